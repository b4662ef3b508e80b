// The service registry over HTTP: queries (blocking and streamed), and
// registrations held by sessions of their own for their TTL.
#include "service_registry.hpp"

namespace corral::registry {

void ServiceRegistry::handle(const HttpRequest& req, Responder r) {
  m_http_->inc();
  std::string_view rest = std::string_view(req.path).substr(prefix_.size());
  auto parts = split_path(rest);
  const std::string& m = req.method;
  for (auto p : parts)
    if (p.empty()) return fail(r, 404, "empty path segment");
  if (parts.empty() || parts[0] != "services")
    return fail(r, 404, "unknown path; see " + prefix_ + "/services");
  if (!allowed(req, r)) return;
  if (parts.size() >= 2 && !valid_name(parts[1]))
    return fail(r, 400,
                "\"" + std::string(parts[1]) +
                    "\" is not a service name (letters, digits, '-', '_', '.', up to 63)");
  if (parts.size() >= 4 && !valid_name(parts[3]))
    return fail(r, 400,
                "\"" + std::string(parts[3]) +
                    "\" is not an instance id (letters, digits, '-', '_', '.', up to 63)");
  if (parts.size() == 1) {
    if (m != "GET") return fail(r, 405, "GET lists the services");
    return consistent(req, r, base_, [this, r] { list_services(r); });
  }
  std::string svc(parts[1]);
  if (parts.size() == 2) {
    if (m != "GET")
      return fail(r, 405,
                  "GET lists a service's instances; PUT or POST under /instances registers");
    return consistent(req, r, service_path(svc), [this, r, svc, req] { get_service(req, r, svc); });
  }
  if (parts.size() == 3 && parts[2] == "events") {
    if (m != "GET") return fail(r, 405, "GET streams a service's changes");
    return stream(r, svc);
  }
  if (parts[2] != "instances")
    return fail(r, 404, "unknown path under " + prefix_ + "/services/" + svc);
  if (parts.size() == 3) {
    if (m == "POST") return register_instance(req, r, svc, random_id(), 201);
    if (m == "GET")
      return consistent(req, r, service_path(svc),
                        [this, r, svc, req] { get_service(req, r, svc); });
    return fail(r, 405, "POST registers an instance with a generated id");
  }
  std::string id(parts[3]);
  if (parts.size() == 4) {
    if (m == "PUT") return register_instance(req, r, svc, id, 200);
    if (m == "DELETE") return deregister(req, r, svc, id);
    if (m == "GET")
      return consistent(req, r, instance_path(svc, id),
                        [this, r, svc, id] { get_instance(r, svc, id); });
    return fail(r, 405, "PUT registers, GET reads, DELETE deregisters");
  }
  if (parts.size() == 5 && parts[4] == "renew") {
    if (m != "PUT" && m != "POST") return fail(r, 405, "PUT renews");
    return renew(req, r, svc, id);
  }
  return fail(r, 404, "unknown path");
}

bool ServiceRegistry::allowed(const HttpRequest& req, const Responder& r) {
  bool write = req.method != "GET" && req.method != "HEAD";
  if (req.authenticated || (write ? anonymous_writes_ : anonymous_reads_)) return true;
  fail(r, 401,
       std::string(write ? "changing" : "reading") +
           " the registry needs credentials (HTTP Basic as a digest or SASL user, or a client "
           "certificate); the service's znode ACL then says what they may do");
  return false;
}

// A tree error as the HTTP answer to a change.
static void fail_change(const Responder& r, const char* what, Err e) {
  if (e == Err::no_auth)
    return fail(r, 403,
                std::string(what) +
                    ": the credentials given may not (the service's znode ACL refuses them)");
  fail(r, 503, std::string(what) + ": " + err_name(e));
}

void ServiceRegistry::consistent(const HttpRequest& req, const Responder& r,
                                 const std::string& path, std::function<void()> then) {
  // Without a session (this server has no leader, or is between sessions)
  // nothing read here can be trusted, not even that a service is missing.
  if (!reader_) return fail(r, 503, "not connected to the ensemble; try again, or another server");
  if (!req.query.count("consistent")) return then();
  reader_->sync(path, [r, then = std::move(then), alive = alive_.ref()](const sdk::TreeResult& st) {
    if (!alive) return;
    if (st.err != Err::ok)
      return fail(r, 503, std::string("syncing with the leader: ") + err_name(st.err));
    then();
  });
}

void ServiceRegistry::list_services(Responder r) {
  if (!reader_) return fail(r, 503, "not connected to the ensemble");
  reader_->get_children(base_, false, [r](const sdk::TreeResult& res) {
    if (res.err != Err::ok && res.err != Err::no_node)
      return fail(r, 503, std::string("reading the registry: ") + err_name(res.err));
    std::vector<std::string> names = res.children;
    std::sort(names.begin(), names.end());
    std::string out = "{\"services\":[";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + common::json_quote(names[i]);
    reply(r, 200, out + "]}\n");
  });
}

void ServiceRegistry::get_service(const HttpRequest& req, Responder r, const std::string& svc) {
  bool healthy = req.query.count("healthy") && req.query.at("healthy") != "false";
  std::optional<int64_t> index;
  if (auto it = req.query.find("index"); it != req.query.end()) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
    if (ec != std::errc() || p != it->second.data() + it->second.size())
      return fail(r, 400, "index must be an integer (the \"index\" of an earlier answer)");
    index = n;
  }
  int64_t wait_ms = 30000;
  if (auto it = req.query.find("wait"); it != req.query.end()) {
    auto w = parse_duration_ms(it->second);
    if (!w || *w > 600000) return fail(r, 400, "wait must be a duration up to 10m, such as 30s");
    wait_ms = *w;
  }
  load(svc, [this, r, svc, healthy, index, wait_ms] {
    View& v = views_[svc];
    if (!v.known)
      return fail(r, 503, "not connected to the ensemble; try again, or another server");
    if (!v.exists && !index) return fail(r, 404, "no service \"" + svc + "\"");
    if (!index || v.index > *index) return reply(r, 200, view_json(svc, healthy));
    // A blocking query: answer on the next change, or when the wait ends.
    uint64_t serial = ++serial_;
    Waiter w{r, healthy, nullptr, serial};
    w.timer = host_->executor().schedule(std::chrono::milliseconds(wait_ms), [this, svc, serial] {
      View& view = views_[svc];
      for (auto it = view.waiters.begin(); it != view.waiters.end(); ++it)
        if (it->serial == serial) {
          Waiter done = std::move(*it);
          view.waiters.erase(it);
          reply(done.responder, 200, view_json(svc, done.healthy));
          return;
        }
    });
    r->on_gone([this, alive = alive_.ref(), svc, serial] {
      if (!alive) return;
      auto& ws = views_[svc].waiters;
      ws.erase(
          std::remove_if(ws.begin(), ws.end(), [&](const Waiter& x) { return x.serial == serial; }),
          ws.end());
    });
    v.waiters.push_back(std::move(w));
  });
}

void ServiceRegistry::stream(Responder r, const std::string& svc) {
  load(svc, [this, r, svc] {
    r->stream_start(200, "text/event-stream");
    r->send(sse_event(svc));
    views_[svc].streams.push_back(r);
    keepalive();
  });
}

void ServiceRegistry::keepalive() {
  if (ping_timer_) return;
  ping_timer_ = host_->executor().schedule(std::chrono::milliseconds(15000), [this] {
    ping_timer_.reset();
    bool any = false;
    for (auto& [svc, v] : views_) {
      std::vector<Responder> open;
      for (auto& s : v.streams)
        if (s->open()) {
          s->send(": keepalive\n\n");
          open.push_back(s);
        }
      v.streams = std::move(open);
      any = any || !v.streams.empty();
    }
    if (any) keepalive();
  });
}

void ServiceRegistry::get_instance(Responder r, const std::string& svc, const std::string& id) {
  if (!reader_) return fail(r, 503, "not connected to the ensemble");
  reader_->get_data(instance_path(svc, id), false, [r, svc, id](const sdk::TreeResult& res) {
    if (res.err == Err::no_node)
      return fail(r, 404, "no instance \"" + id + "\" of service \"" + svc + "\"");
    if (res.err != Err::ok)
      return fail(r, 503, std::string("reading the registry: ") + err_name(res.err));
    reply(r, 200, res.data + "\n");
  });
}

std::optional<int64_t> ServiceRegistry::ttl_of(const HttpRequest& req, const Responder& r) {
  auto it = req.query.find("ttl");
  if (it == req.query.end()) return default_ttl_ms_;
  auto ttl = parse_duration_ms(it->second);
  if (!ttl || *ttl < min_ttl_ms_ || *ttl > max_ttl_ms_) {
    fail(r, 400,
         "ttl must be a duration from " + std::to_string(min_ttl_ms_) + "ms to " +
             std::to_string(max_ttl_ms_) + "ms, such as 30s");
    return std::nullopt;
  }
  return ttl;
}

void ServiceRegistry::register_instance(const HttpRequest& req, Responder r, const std::string& svc,
                                        const std::string& id, int created_status) {
  auto ttl = ttl_of(req, r);
  if (!ttl) return;
  if (static_cast<int64_t>(req.body.size()) > max_payload_)
    return fail(r, 413,
                "the instance document is larger than max_payload_bytes (" +
                    std::to_string(max_payload_) + ")");
  auto doc = instance_document(svc, id, req.body, host_->clock().wall_ms());
  if (!doc) return fail(r, 400, doc.status().message());
  hold(svc, id, doc->dump(), *ttl, req.identities,
       [this, r, svc, id, ttl, created_status](Err e, const std::string& document) {
         if (e != Err::ok) return fail_change(r, "registering", e);
         m_registrations_->inc();
         reply(r, created_status,
               "{\"service\":" + common::json_quote(svc) + ",\"id\":" + common::json_quote(id) +
                   ",\"ttl_ms\":" + std::to_string(*ttl) + ",\"instance\":" + document + "}\n");
       });
}

void ServiceRegistry::hold(const std::string& svc, const std::string& id, std::string document,
                           int64_t ttl_ms, const std::vector<proto::Id>& caller,
                           std::function<void(Err, const std::string&)> done) {
  std::string k = key(svc, id);
  // What this server held before, put back if the tree refuses the caller.
  done = keep_unless_written(k, std::move(done));
  Registration& reg = regs_[k];
  reg.service = svc;
  reg.id = id;
  reg.document = std::move(document);
  reg.ttl_ms = ttl_ms;
  arm(k);
  if (!reg.session) {
    if (!open_registration_session(reg)) {
      regs_.erase(k);
      return done(Err::connection_loss, "");
    }
    m_local_->set(static_cast<int64_t>(regs_.size()));
  }
  reg.caller = caller;
  reg.session->act_as(caller);
  write_node(k, 0, std::move(done));
}

std::function<void(Err, const std::string&)> ServiceRegistry::keep_unless_written(
    const std::string& k, std::function<void(Err, const std::string&)> done) {
  auto it = regs_.find(k);
  bool existed = it != regs_.end();
  std::string document;
  int64_t ttl_ms = 0;
  std::vector<proto::Id> caller;
  if (existed) {
    document = it->second.document;
    ttl_ms = it->second.ttl_ms;
    caller = it->second.caller;
  }
  return [this, alive = alive_.ref(), k, existed, document, ttl_ms, caller, done = std::move(done)](
             Err e, const std::string& written) {
    if (alive && e != Err::ok) {
      auto it = regs_.find(k);
      if (it != regs_.end() && !existed) {
        // Refused (or failed) on first registration here: nothing is kept.
        if (it->second.session) it->second.session->close();
        regs_.erase(it);
        m_local_->set(static_cast<int64_t>(regs_.size()));
      } else if (it != regs_.end()) {
        it->second.document = document;
        it->second.ttl_ms = ttl_ms;
        it->second.caller = caller;
        if (it->second.session) it->second.session->act_as(caller);
        arm(k);
      }
    }
    done(e, written);
  };
}

bool ServiceRegistry::open_registration_session(Registration& reg) {
  // The session outlives this server by its timeout: a TTL's, or the
  // default TTL for a container's registration.
  int64_t timeout = reg.ttl_ms > 0 ? reg.ttl_ms : default_ttl_ms_;
  auto s = recipes_->open_session(static_cast<int32_t>(std::clamp<int64_t>(timeout, 1, INT32_MAX)),
                                  [](const proto::WatcherEvent&) {});
  if (!s) return false;
  reg.session = std::move(s.value());
  reg.session->act_as(reg.caller);
  return true;
}

void ServiceRegistry::write_node(const std::string& k, int attempt,
                                 std::function<void(Err, const std::string&)> done) {
  auto it = regs_.find(k);
  if (it == regs_.end()) return done(Err::no_node, "");
  Registration& reg = it->second;
  std::string path = instance_path(reg.service, reg.id);
  auto alive = alive_.ref();
  sdk::TreeSession* session = reg.session.get();
  session->exists(
      path, false, [this, alive, k, attempt, done, path, session](const sdk::TreeResult& st) {
        if (!alive) return;
        auto it2 = regs_.find(k);
        if (it2 == regs_.end() || it2->second.session.get() != session)
          return done(Err::no_node, "");
        Registration& reg = it2->second;
        const std::string doc = reg.document;
        if (st.err == Err::session_expired && attempt < 2) {
          // The registration's session is gone: the ensemble expired it
          // while this server was cut off (its ephemeral with it), or this
          // server lost its leader, which ends its in-process sessions. A
          // renewal (or update) brings the instance back on a new session,
          // as Curator's ServiceDiscovery registers again after a loss; an
          // ephemeral the old session still holds is taken over below.
          if (!open_registration_session(reg)) return done(Err::connection_loss, "");
          return write_node(k, attempt + 1, done);
        }
        if (st.err == Err::ok && st.stat.ephemeral_owner == session->session_id()) {
          session->set_data(path, doc, -1,
                            [done, doc](const sdk::TreeResult& w) { done(w.err, doc); });
          return;
        }
        if (st.err == Err::ok) {
          if (attempt >= 2) return done(Err::node_exists, "");
          // Someone else's (another server's registration, or Curator's):
          // take it over.
          session->remove(path, st.stat.version,
                          [this, alive, k, attempt, done](const sdk::TreeResult&) {
                            if (alive) write_node(k, attempt + 1, done);
                          });
          return;
        }
        // The registration's session may be replaced (or closed: a lapse, a
        // deregistration) while this chain runs: each step asks first.
        auto current = [this, alive, k, session]() -> sdk::TreeSession* {
          if (!alive) return nullptr;
          auto it3 = regs_.find(k);
          return it3 != regs_.end() && it3->second.session.get() == session ? session : nullptr;
        };
        create_parents(current, service_path(reg.service), reg.caller,
                       [this, alive, k, attempt, done, path, current, doc](Err parents) {
                         if (!alive) return;
                         if (parents != Err::ok) return done(parents, "");
                         sdk::TreeSession* session = current();
                         if (!session) return done(Err::session_expired, "");
                         session->create(
                             path, doc, CreateMode::ephemeral,
                             [this, alive, k, attempt, done, doc](const sdk::TreeResult& c) {
                               if (!alive) return;
                               if (c.err == Err::node_exists && attempt < 2)
                                 return write_node(k, attempt + 1, done);
                               done(c.err, doc);
                             });
                       });
      });
}

void ServiceRegistry::create_parents(std::function<sdk::TreeSession*()> current,
                                     const std::string& path, const std::vector<proto::Id>& caller,
                                     std::function<void(Err)> then) {
  // base_path's ancestors and base_path, as the registry itself (open to
  // all, as Curator makes them); then the service, as the caller, so that
  // it belongs to whoever registered it first. `then` hears NOAUTH when the
  // caller may not create the service.
  auto paths = std::make_shared<std::vector<std::string>>();
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
    paths->push_back(path.substr(0, at));
  paths->push_back(path);
  auto step = std::make_shared<std::function<void(size_t)>>();
  *step = [current, paths, step, then, caller](size_t i) {
    if (i == paths->size()) return then(Err::ok);
    sdk::TreeSession* session = current();
    if (!session) return then(Err::session_expired);  // replaced or closed meanwhile
    bool service = i + 1 == paths->size();
    if (service) session->act_as(caller);
    session->create((*paths)[i], "", CreateMode::persistent,
                    [step, i, service, then](const sdk::TreeResult& res) {
                      if (service && res.err == Err::no_auth) return then(res.err);
                      (*step)(i + 1);
                    });
  };
  if (sdk::TreeSession* session = current()) session->act_as({});
  (*step)(0);
}

void ServiceRegistry::arm(const std::string& k) {
  Registration& reg = regs_[k];
  if (reg.ttl_ms <= 0) {  // a container's: held while the container runs
    reg.timer.reset();
    reg.deadline_ms = 0;
    return;
  }
  reg.deadline_ms = host_->clock().steady_ms() + reg.ttl_ms;
  reg.timer = host_->executor().schedule(std::chrono::milliseconds(reg.ttl_ms), [this, k] {
    auto it = regs_.find(k);
    if (it == regs_.end()) return;
    host_->logger().info("instance " + k + " lapsed: not renewed within " +
                         std::to_string(it->second.ttl_ms) + " ms");
    m_lapsed_->inc();
    if (it->second.session) it->second.session->close();  // its ephemeral goes with it
    regs_.erase(it);
    m_local_->set(static_cast<int64_t>(regs_.size()));
  });
}

void ServiceRegistry::renew(const HttpRequest& req, Responder r, const std::string& svc,
                            const std::string& id) {
  std::string k = key(svc, id);
  auto it = regs_.find(k);
  std::optional<int64_t> ttl;
  if (req.query.count("ttl")) {
    ttl = ttl_of(req, r);
    if (!ttl) return;
  }
  auto answer = [r, svc, id](int64_t ttl_ms) {
    return [r, svc, id, ttl_ms](Err e, const std::string&) {
      if (e == Err::no_node)
        return fail(r, 404, "instance \"" + id + "\" of \"" + svc + "\" is not registered");
      if (e != Err::ok) return fail_change(r, "renewing", e);
      reply(r, 200,
            "{\"service\":" + common::json_quote(svc) + ",\"id\":" + common::json_quote(id) +
                ",\"ttl_ms\":" + std::to_string(ttl_ms) + "}\n");
    };
  };
  if (it != regs_.end()) {
    auto done = keep_unless_written(k, answer(ttl.value_or(it->second.ttl_ms)));
    if (ttl) it->second.ttl_ms = *ttl;
    arm(k);
    it->second.caller = req.identities;
    if (it->second.session) it->second.session->act_as(req.identities);
    // Still ours? (Another server may have taken it over.) write_node checks.
    return write_node(k, 0, std::move(done));
  }
  // Held elsewhere (or lapsed): take it over if it is still there.
  if (!reader_) return fail(r, 503, "not connected to the ensemble");
  reader_->get_data(
      instance_path(svc, id), false,
      [this, alive = alive_.ref(), r, svc, id, ttl, answer,
       caller = req.identities](const sdk::TreeResult& d) {
        if (!alive) return;
        if (d.err == Err::no_node)
          return fail(r, 404,
                      "instance \"" + id + "\" of \"" + svc +
                          "\" is not registered (its TTL may have lapsed); register it again");
        if (d.err != Err::ok) return fail(r, 503, std::string("renewing: ") + err_name(d.err));
        int64_t t = ttl.value_or(default_ttl_ms_);
        hold(svc, id, d.data, t, caller, answer(t));
      });
}

void ServiceRegistry::deregister(const HttpRequest& req, Responder r, const std::string& svc,
                                 const std::string& id) {
  if (!reader_) return fail(r, 503, "not connected to the ensemble");
  // The caller removes the node itself, so the tree decides whether it may;
  // only then does this server let go of the registration.
  reader_->act_as(req.identities);
  std::string k = key(svc, id);
  reader_->remove(instance_path(svc, id), -1,
                  [this, alive = alive_.ref(), r, svc, id, k](const sdk::TreeResult& res) {
                    if (alive && (res.err == Err::ok || res.err == Err::no_node)) {
                      auto it = regs_.find(k);
                      if (it != regs_.end()) {
                        if (it->second.session) it->second.session->close();
                        regs_.erase(it);
                        m_local_->set(static_cast<int64_t>(regs_.size()));
                      }
                    }
                    if (res.err == Err::no_node)
                      return fail(r, 404, "no instance \"" + id + "\" of service \"" + svc + "\"");
                    if (res.err != Err::ok) return fail_change(r, "deregistering", res.err);
                    reply(r, 200,
                          "{\"service\":" + common::json_quote(svc) +
                              ",\"id\":" + common::json_quote(id) + ",\"deregistered\":true}\n");
                  });
  reader_->act_as({});
}

std::string ServiceRegistry::random_id() { return common::random_uuid(); }

}  // namespace corral::registry
