// The console's tree API: a znode with its data, ACL and a page of its
// children; create, set, delete (a subtree too), setACL; and live streams
// fed by one persistent watch per path. Every call acts as the caller.
#include <algorithm>

#include "console.hpp"
#include "corral/common/json.hpp"
#include "corral/proto/jute.hpp"

namespace corral::console {

using common::json_quote;
using common::JsonValue;
using proto::Err;

namespace {

// Subtrees with more znodes than this below their root are not deleted from
// the console (zkCli's deleteall has no limit; a page request should).
constexpr size_t kMaxRecursiveDelete = 100000;
// Deletes of a subtree in flight at once.
constexpr size_t kDeleteWindow = 256;
// Request bodies the API takes (a znode's data is at most 1 MiB, base64).
constexpr size_t kMaxBody = 1500000;
// A stream with no event says so this often, so that idle connections
// through proxies stay open and departed clients are noticed.
constexpr int64_t kKeepaliveMs = 15000;

template <class Record>
std::string encode(const Record& rec) {
  std::string out;
  proto::JuteWriter w(out);
  proto::write(w, rec);
  return out;
}

std::optional<int64_t> query_int(const sdk::HttpRequest& req, const char* key, int64_t def) {
  auto it = req.query.find(key);
  if (it == req.query.end() || it->second.empty()) return def;
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    if (used != it->second.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// The request's JSON body, or an answer saying what is wrong with it.
std::optional<JsonValue> body_of(const sdk::HttpRequest& req, const Responder& r) {
  if (req.body.size() > kMaxBody) {
    respond_json(
        r, 413,
        error_json("the request body is larger than " + std::to_string(kMaxBody) + " bytes"));
    return std::nullopt;
  }
  auto doc = JsonValue::parse(req.body, 8);
  if (!doc) {
    respond_json(r, 400, error_json("the body is not JSON: " + doc.status().message()));
    return std::nullopt;
  }
  if (!doc.value().is_object()) {
    respond_json(r, 400, error_json("the body must be a JSON object"));
    return std::nullopt;
  }
  return std::move(doc.value());
}

// A path field (or query parameter) ZooKeeper accepts.
bool check_path(const std::string& path, const Responder& r, bool sequential = false) {
  if (const char* why = proto::path_error(path, sequential)) {
    respond_json(r, 400,
                 error_json(std::string("bad path \"") + path + "\": " + why, "BadArguments",
                            static_cast<int>(Err::bad_arguments)));
    return false;
  }
  return true;
}

std::optional<int32_t> version_of(const JsonValue& doc, const Responder& r) {
  const JsonValue* v = doc.get("version");
  if (!v) return -1;
  auto n = v->as_int();
  if (!n || *n < -1 || *n > INT32_MAX) {
    respond_json(r, 400, error_json("version must be an integer (-1: any version)"));
    return std::nullopt;
  }
  return static_cast<int32_t>(*n);
}

std::optional<std::string> data_of(const JsonValue& doc, const Responder& r) {
  const JsonValue* d = doc.get("data_b64");
  if (!d || d->is_null()) return std::string();
  const std::string* s = d->as_string();
  std::optional<std::string> bytes = s ? base64_decode(*s) : std::nullopt;
  if (!bytes) {
    respond_json(r, 400, error_json("data_b64 must be a base64 string"));
    return std::nullopt;
  }
  return bytes;
}

// [{"scheme", "id", "perms": "cdrwa"}] as an ACL; an answer when malformed.
std::optional<proto::AclList> acl_of(const JsonValue& v, const Responder& r) {
  const auto* items = v.as_array();
  if (!items || items->empty() || items->size() > 64) {
    respond_json(r, 400, error_json("acl must be a list of 1 to 64 entries"));
    return std::nullopt;
  }
  proto::AclList acl;
  for (const JsonValue& e : *items) {
    const std::string* scheme = e.get("scheme") ? e.get("scheme")->as_string() : nullptr;
    const std::string* id = e.get("id") ? e.get("id")->as_string() : nullptr;
    const std::string* perms = e.get("perms") ? e.get("perms")->as_string() : nullptr;
    std::optional<int32_t> p = perms ? perms_from_text(*perms) : std::nullopt;
    if (!scheme || !id || !p) {
      respond_json(r, 400,
                   error_json("each acl entry needs scheme, id and perms (letters of cdrwa)"));
      return std::nullopt;
    }
    acl.push_back({*p, {*scheme, *id}});
  }
  return acl;
}

}  // namespace

void Console::get_node(const sdk::HttpRequest& req, const Responder& r) {
  auto pit = req.query.find("path");
  std::string path = pit == req.query.end() || pit->second.empty() ? "/" : pit->second;
  if (!check_path(path, r)) return;
  auto offset = query_int(req, "offset", 0);
  auto limit = query_int(req, "limit", 200);
  if (!offset || !limit || *offset < 0 || *limit < 0)
    return respond_json(r, 400, error_json("offset and limit must be numbers of 0 or more"));
  size_t off = static_cast<size_t>(*offset);
  size_t lim = static_cast<size_t>(std::min<int64_t>(*limit, max_children_));
  std::string filter = req.query.count("filter") ? req.query.at("filter") : "";
  std::vector<proto::Id> ids = req.identities;
  // Data, then ACL, then children: three calls in order, each as the caller.
  as(req).get_data(
      path, false,
      [this, alive = alive_.ref(), r, req, path, off, lim, filter,
       ids](const sdk::TreeResult& data) {
        if (!alive) return;
        if (data.err != Err::ok) return tree_error(r, data.err, path);
        if (!session_) return tree_error(r, Err::connection_loss, path);
        as(req).request(
            proto::OpCode::get_acl, encode(proto::PathRequest{path}),
            [this, alive, r, req, path, off, lim, filter, ids, data](const sdk::TreeResult& acl) {
              if (!alive) return;
              if (acl.err != Err::ok && acl.err != Err::no_auth)
                return tree_error(r, acl.err, path);
              if (!session_) return tree_error(r, Err::connection_loss, path);
              as(req).get_children(
                  path, false,
                  [r, path, off, lim, filter, ids, data, acl, alive](const sdk::TreeResult& kids) {
                    if (!alive) return;
                    if (kids.err != Err::ok) {
                      respond_json(r, http_status(kids.err),
                                   error_json(error_message(kids.err, path), error_code(kids.err),
                                              static_cast<int>(kids.err)));
                      return;
                    }
                    std::vector<const std::string*> names;
                    names.reserve(kids.children.size());
                    for (const std::string& c : kids.children)
                      if (filter.empty() || c.find(filter) != std::string::npos)
                        names.push_back(&c);
                    size_t end = std::min(names.size(), off + lim);
                    if (off < end)
                      std::partial_sort(
                          names.begin() + static_cast<std::ptrdiff_t>(off),
                          names.begin() + static_cast<std::ptrdiff_t>(end), names.end(),
                          [](const std::string* a, const std::string* b) { return *a < *b; });
                    // partial_sort orders [off, end) among all only if [0, off) holds
                    // the smallest: sort the prefix too (cheap next to the copy).
                    if (off > 0 && off < names.size()) {
                      std::nth_element(
                          names.begin(), names.begin() + static_cast<std::ptrdiff_t>(off),
                          names.end(),
                          [](const std::string* a, const std::string* b) { return *a < *b; });
                      std::partial_sort(
                          names.begin() + static_cast<std::ptrdiff_t>(off),
                          names.begin() + static_cast<std::ptrdiff_t>(end), names.end(),
                          [](const std::string* a, const std::string* b) { return *a < *b; });
                    }
                    std::string page = "[";
                    for (size_t i = off; i < end; ++i)
                      page += (i > off ? "," : "") + json_quote(*names[i]);
                    page += "]";
                    bool acl_known = acl.err == Err::ok;
                    std::string body =
                        "{\"path\":" + json_quote(path) + ",\"stat\":" + stat_json(data.stat) +
                        ",\"data_b64\":\"" + base64_encode(data.data) +
                        "\",\"acl\":" + (acl_known ? acl_json(acl.acl) : "null") + ",\"rights\":" +
                        (acl_known ? json_quote(perms_text(rights_of(acl.acl, ids))) : "null") +
                        ",\"children\":" + page +
                        ",\"children_total\":" + std::to_string(kids.children.size()) +
                        ",\"children_matching\":" + std::to_string(names.size()) +
                        ",\"offset\":" + std::to_string(off) + "}\n";
                    respond_json(r, 200, std::move(body));
                  });
            });
      });
}

void Console::create_node(const sdk::HttpRequest& req, const Responder& r) {
  auto doc = body_of(req, r);
  if (!doc) return;
  std::string path = doc->get_string("path");
  auto mode = create_mode(doc->get_string("mode", "persistent"));
  if (!mode)
    return respond_json(r, 400,
                        error_json("mode must be one of persistent, ephemeral, "
                                   "persistent_sequential, ephemeral_sequential, container, ttl, "
                                   "ttl_sequential"));
  if (!check_path(path, r, proto::is_sequential(*mode))) return;
  auto data = data_of(*doc, r);
  if (!data) return;
  proto::CreateRequest create;
  create.path = path;
  create.data = std::move(*data);
  create.flags = static_cast<int32_t>(*mode);
  if (const JsonValue* acl = doc->get("acl"); acl && !acl->is_null()) {
    auto list = acl_of(*acl, r);
    if (!list) return;
    create.acl = std::move(*list);
  } else if (req.authenticated) {
    // ZooKeeper's CREATOR_ALL_ACL, with reading left to anyone.
    create.acl = {{proto::perm::all, {"auth", ""}}, {proto::perm::read, {"world", "anyone"}}};
  } else {
    create.acl = proto::open_acl_unsafe();
  }
  proto::OpCode op = proto::OpCode::create2;
  bool ttl = *mode == proto::CreateMode::persistent_with_ttl ||
             *mode == proto::CreateMode::persistent_sequential_with_ttl;
  if (ttl) {
    const JsonValue* t = doc->get("ttl_ms");
    auto v = t ? t->as_int() : std::nullopt;
    if (!v || *v <= 0)
      return respond_json(r, 400,
                          error_json("a ttl mode needs ttl_ms, a number of milliseconds above 0"));
    create.ttl = *v;
    op = proto::OpCode::create_ttl;
  } else if (*mode == proto::CreateMode::container) {
    op = proto::OpCode::create_container;
  }
  std::string body;
  proto::JuteWriter w(body);
  proto::write(w, create, ttl);
  as(req).request(
      op, std::move(body), [this, alive = alive_.ref(), r, path](const sdk::TreeResult& res) {
        if (!alive) return;
        if (res.err != Err::ok) return tree_error(r, res.err, path);
        respond_json(
            r, 201,
            "{\"path\":" + json_quote(res.path) + ",\"stat\":" + stat_json(res.stat) + "}\n");
      });
}

void Console::set_node(const sdk::HttpRequest& req, const Responder& r) {
  auto doc = body_of(req, r);
  if (!doc) return;
  std::string path = doc->get_string("path");
  if (!check_path(path, r)) return;
  auto data = data_of(*doc, r);
  if (!data) return;
  auto version = version_of(*doc, r);
  if (!version) return;
  as(req).set_data(path, *data, *version,
                   [this, alive = alive_.ref(), r, path](const sdk::TreeResult& res) {
                     if (!alive) return;
                     if (res.err != Err::ok) return tree_error(r, res.err, path);
                     respond_json(r, 200, "{\"stat\":" + stat_json(res.stat) + "}\n");
                   });
}

void Console::set_acl(const sdk::HttpRequest& req, const Responder& r) {
  auto doc = body_of(req, r);
  if (!doc) return;
  std::string path = doc->get_string("path");
  if (!check_path(path, r)) return;
  const JsonValue* acl = doc->get("acl");
  if (!acl) return respond_json(r, 400, error_json("acl is missing"));
  auto list = acl_of(*acl, r);
  if (!list) return;
  auto version = version_of(*doc, r);
  if (!version) return;
  as(req).request(proto::OpCode::set_acl, encode(proto::SetAclRequest{path, *list, *version}),
                  [this, alive = alive_.ref(), r, path](const sdk::TreeResult& res) {
                    if (!alive) return;
                    if (res.err != Err::ok) return tree_error(r, res.err, path);
                    respond_json(r, 200, "{\"stat\":" + stat_json(res.stat) + "}\n");
                  });
}

void Console::delete_node(const sdk::HttpRequest& req, const Responder& r) {
  auto pit = req.query.find("path");
  std::string path = pit == req.query.end() ? "" : pit->second;
  if (!check_path(path, r)) return;
  if (path == "/" || path == "/zookeeper" || path.rfind("/zookeeper/", 0) == 0)
    return respond_json(r, 400,
                        error_json(path + " belongs to the server and cannot be deleted",
                                   "BadArguments", static_cast<int>(Err::bad_arguments)));
  auto version = query_int(req, "version", -1);
  if (!version || *version < -1 || *version > INT32_MAX)
    return respond_json(r, 400, error_json("version must be an integer (-1: any version)"));
  auto rec = req.query.find("recursive");
  if (rec != req.query.end() && rec->second != "0" && rec->second != "false") {
    if (*version == -1) return delete_tree(req, r, path);
    // A version applies to the node named, and is checked before anything
    // below it goes.
    as(req).exists(path, false,
                   [this, alive = alive_.ref(), req, r, path,
                    v = static_cast<int32_t>(*version)](const sdk::TreeResult& ex) {
                     if (!alive) return;
                     if (ex.err != Err::ok) return tree_error(r, ex.err, path);
                     if (ex.stat.version != v) return tree_error(r, Err::bad_version, path);
                     if (!session_) return tree_error(r, Err::connection_loss, path);
                     delete_tree(req, r, path);
                   });
    return;
  }
  as(req).remove(path, static_cast<int32_t>(*version),
                 [this, alive = alive_.ref(), r, path](const sdk::TreeResult& res) {
                   if (!alive) return;
                   if (res.err != Err::ok) return tree_error(r, res.err, path);
                   respond_json(r, 200, "{\"deleted\":1}\n");
                 });
}

// deleteall: lists the subtree level by level (as the caller), then deletes
// it deepest first, a window of deletes at a time. A znode already gone is
// not an error; one that gained a child meanwhile is (NotEmpty), and what
// was deleted until then stays deleted, as with zkCli's deleteall.
void Console::delete_tree(const sdk::HttpRequest& req, const Responder& r,
                          const std::string& path) {
  struct Job {
    std::vector<std::string> found;  // in the order listed: parents before children
    size_t listed = 0;               // `found` up to here is listed or being listed
    size_t listing = 0;              // listings in flight
    size_t next = 0;                 // deletes: index from the back of `found`
    size_t in_flight = 0, deleted = 0;
    Err err = Err::ok;
    std::string err_path;
    bool answered = false;
  };
  auto job = std::make_shared<Job>();
  job->found.push_back(path);
  auto req_copy = std::make_shared<sdk::HttpRequest>(req);
  req_copy->body.clear();
  auto fail = [this, r, job](Err err, const std::string& at) {
    if (job->answered) return;
    job->answered = true;
    std::string body = error_json(
        error_message(err, at) + " (after deleting " + std::to_string(job->deleted) + " znodes)",
        error_code(err), static_cast<int>(err));
    respond_json(r, http_status(err), std::move(body));
  };
  auto pump = std::make_shared<std::function<void()>>();
  auto list = std::make_shared<std::function<void()>>();
  *pump = [this, alive = alive_.ref(), r, job, req_copy, fail, pump_weak = std::weak_ptr(pump)] {
    if (!alive || job->answered) return;
    auto pump = pump_weak.lock();
    if (!pump) return;
    if (!session_) return fail(Err::connection_loss, job->found.front());
    while (job->in_flight < kDeleteWindow && job->next < job->found.size()) {
      const std::string& victim = job->found[job->found.size() - 1 - job->next++];
      ++job->in_flight;
      as(*req_copy).remove(
          victim, -1, [alive, r, job, fail, pump, victim](const sdk::TreeResult& res) {
            if (!alive) return;
            --job->in_flight;
            if (res.err == Err::ok)
              ++job->deleted;
            else if (res.err != Err::no_node && job->err == Err::ok) {
              job->err = res.err;
              job->err_path = victim;
            }
            if (job->err != Err::ok) {
              if (job->in_flight == 0) fail(job->err, job->err_path);
              return;
            }
            if (job->next == job->found.size() && job->in_flight == 0) {
              job->answered = true;
              respond_json(r, 200, "{\"deleted\":" + std::to_string(job->deleted) + "}\n");
              return;
            }
            (*pump)();
          });
    }
  };
  // Lists `found` in order from job->listed, a window at a time (the
  // session's requests are bounded like a client's).
  *list = [this, alive = alive_.ref(), r, job, req_copy, fail, pump,
           list_weak = std::weak_ptr(list)]() {
    auto list = list_weak.lock();
    if (!list || job->answered) return;
    if (!session_) return fail(Err::connection_loss, job->found.front());
    while (job->listing < kDeleteWindow && job->listed < job->found.size()) {
      std::string at = job->found[job->listed++];
      ++job->listing;
      as(*req_copy).get_children(
          at, false, [alive, r, job, fail, pump, list, at](const sdk::TreeResult& res) {
            if (!alive || job->answered) return;
            --job->listing;
            if (res.err != Err::ok && (res.err != Err::no_node || at == job->found.front()))
              return fail(res.err, at);
            if (job->found.size() - 1 + res.children.size() > kMaxRecursiveDelete) {
              job->answered = true;
              respond_json(
                  r, 400,
                  error_json("more than " + std::to_string(kMaxRecursiveDelete) + " znodes under " +
                                 job->found.front() + ": delete it in parts; nothing was deleted",
                             "BadArguments", static_cast<int>(Err::bad_arguments)));
              return;
            }
            for (const std::string& c : res.children)
              job->found.push_back((at == "/" ? "/" : at + "/") + c);
            if (job->listing == 0 && job->listed == job->found.size())
              (*pump)();
            else
              (*list)();
          });
    }
  };
  // The callbacks in flight hold `list` and `pump`; the last one frees them.
  (*list)();
}

void Console::subscribe(const sdk::HttpRequest& req, const Responder& r) {
  auto pit = req.query.find("path");
  std::string path = pit == req.query.end() ? "" : pit->second;
  if (!check_path(path, r)) return;
  if (stream_count_ >= static_cast<size_t>(max_streams_)) {
    m_refused_streams_->inc();
    return respond_json(r, 503,
                        error_json("the console has " + std::to_string(max_streams_) +
                                   " live streams open (recipe.console.max_streams); retry later"));
  }
  // The caller must be able to read the znode (or, when it does not exist
  // yet, its parent would tell them nothing more than exists() does).
  as(req).exists(
      path, false, [this, alive = alive_.ref(), r, req, path](const sdk::TreeResult& ex) {
        if (!alive) return;
        if (ex.err != Err::ok && ex.err != Err::no_node) return tree_error(r, ex.err, path);
        if (!session_) return tree_error(r, Err::connection_loss, path);
        if (ex.err == Err::ok) {
          // exists() passes without READ; the data read checks it.
          as(req).get_data(path, false, [this, alive, r, req, path](const sdk::TreeResult& d) {
            if (!alive) return;
            if (d.err != Err::ok && d.err != Err::no_node) return tree_error(r, d.err, path);
            start_stream(req, r, path);
          });
        } else {
          start_stream(req, r, path);
        }
      });
}

void Console::start_stream(const sdk::HttpRequest& req, const Responder& r,
                           const std::string& path) {
  if (!r->open()) return;  // gone while its rights were checked
  if (stream_count_ >= static_cast<size_t>(max_streams_)) {
    m_refused_streams_->inc();
    return respond_json(r, 503, error_json("too many live streams; retry later"));
  }
  if (!session_) return tree_error(r, Err::connection_loss, path);
  bool first = streams_[path].empty();
  streams_[path].push_back(r);
  ++stream_count_;
  r->stream_start(200, "text/event-stream");
  r->send(": watching " + path + "\n\n");
  sdk::HttpResponder* who = r.get();
  r->on_gone([this, alive = alive_.ref(), path, who] {
    if (alive) unsubscribe(path, who);
  });
  if (first)
    as(req).request(proto::OpCode::add_watch, encode(proto::PathModeRequest{path, 0}),
                    [this, alive = alive_.ref(), path](const sdk::TreeResult& res) {
                      if (!alive || res.err == Err::ok) return;
                      host_->logger().warn("console: cannot watch " + path + ": " +
                                           error_message(res.err, path));
                    });
}

void Console::unsubscribe(const std::string& path, sdk::HttpResponder* who) {
  auto it = streams_.find(path);
  if (it == streams_.end()) return;
  auto& list = it->second;
  auto at =
      std::find_if(list.begin(), list.end(), [who](const Responder& p) { return p.get() == who; });
  if (at == list.end()) return;
  list.erase(at);
  --stream_count_;
  if (!list.empty()) return;
  streams_.erase(it);
  if (session_) {
    session_->act_as({});
    session_->request(proto::OpCode::remove_watches, encode(proto::PathModeRequest{path, 4}),
                      [](const sdk::TreeResult&) {});
  }
}

void Console::notify(const proto::WatcherEvent& ev) {
  auto it = streams_.find(ev.path);
  if (it == streams_.end()) return;
  const char* type = "NodeChanged";
  switch (static_cast<proto::EventType>(ev.type)) {
    case proto::EventType::node_created:
      type = "NodeCreated";
      break;
    case proto::EventType::node_deleted:
      type = "NodeDeleted";
      break;
    case proto::EventType::node_data_changed:
      type = "NodeDataChanged";
      break;
    case proto::EventType::node_children_changed:
      type = "NodeChildrenChanged";
      break;
    default:
      break;
  }
  std::string msg = "event: node\ndata: {\"type\":\"" + std::string(type) +
                    "\",\"path\":" + json_quote(ev.path) + "}\n\n";
  // send() lets go of a subscriber that does not read; its place is freed
  // here (its on_gone does not run then).
  std::vector<Responder> targets = it->second;
  for (const Responder& r : targets)
    if (r->open()) r->send(msg);
  drop_closed(targets, ev.path);
}

void Console::drop_closed(const std::vector<Responder>& seen, const std::string& path) {
  for (const Responder& r : seen)
    if (!r->open()) unsubscribe(path, r.get());
}

void Console::end_streams() {
  auto all = std::move(streams_);
  streams_.clear();
  stream_count_ = 0;
  for (auto& [path, list] : all)
    for (const Responder& r : list) r->end();
}

void Console::keepalive() {
  keepalive_timer_ = host_->executor().schedule(std::chrono::milliseconds(kKeepaliveMs),
                                                [this, alive = alive_.ref()] {
                                                  if (!alive) return;
                                                  auto all = streams_;
                                                  for (auto& [path, list] : all) {
                                                    for (const Responder& r : list)
                                                      if (r->open()) r->send(": keepalive\n\n");
                                                    drop_closed(list, path);
                                                  }
                                                  keepalive();
                                                });
}

}  // namespace corral::console
