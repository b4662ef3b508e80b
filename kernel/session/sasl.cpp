#include "session/sasl.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

std::string md5(std::string_view in) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// key=value pairs, values optionally quoted with backslash escapes, as the
// directives of RFC 2831 (section 7.1) are written.
std::map<std::string, std::string> parse_directives(std::string_view in) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < in.size()) {
    while (i < in.size() && (in[i] == ',' || std::isspace(static_cast<unsigned char>(in[i])))) ++i;
    size_t eq = in.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(in.substr(i, eq - i));
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    i = eq + 1;
    std::string value;
    if (i < in.size() && in[i] == '"') {
      ++i;
      while (i < in.size() && in[i] != '"') {
        if (in[i] == '\\' && i + 1 < in.size()) ++i;
        value += in[i++];
      }
      ++i;  // the closing quote
    } else {
      while (i < in.size() && in[i] != ',') value += in[i++];
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
        value.pop_back();
    }
    out[key] = value;
  }
  return out;
}

}  // namespace

std::string digest_md5_response(std::string_view user, std::string_view realm,
                                std::string_view password, std::string_view nonce,
                                std::string_view cnonce, std::string_view nc, std::string_view qop,
                                std::string_view authzid, std::string_view a2) {
  std::string a1 = md5(std::string(user) + ":" + std::string(realm) + ":" + std::string(password)) +
                   ":" + std::string(nonce) + ":" + std::string(cnonce);
  if (!authzid.empty()) a1 += ":" + std::string(authzid);
  return hex(md5(hex(md5(a1)) + ":" + std::string(nonce) + ":" + std::string(nc) + ":" +
                 std::string(cnonce) + ":" + std::string(qop) + ":" + hex(md5(a2))));
}

sdk::Result<std::string> DigestMd5Server::step(std::string_view token) {
  if (complete_) return Status{Errc::invalid_argument, "the SASL exchange is already complete"};
  if (stage_ == 0) {
    // DIGEST-MD5 starts with the server; whatever the client opened with.
    stage_ = 1;
    return "realm=\"" + std::string(kRealm) + "\",nonce=\"" + nonce_ +
           "\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
  }
  auto d = parse_directives(token);
  auto get = [&](const char* k) -> const std::string& {
    static const std::string kEmpty;
    auto it = d.find(k);
    return it == d.end() ? kEmpty : it->second;
  };
  const std::string& user = get("username");
  std::string qop = get("qop").empty() ? "auth" : get("qop");
  if (user.empty() || get("response").empty() || get("cnonce").empty() || get("nc").empty())
    return Status{Errc::invalid_argument,
                  "the DIGEST-MD5 response lacks username, cnonce, nc or response"};
  if (get("nonce") != nonce_)
    return Status{Errc::invalid_argument, "the DIGEST-MD5 response names another nonce"};
  if (qop != "auth") return Status{Errc::invalid_argument, "only qop=auth is offered, not " + qop};
  auto it = users_.find(user);
  if (it == users_.end()) return Status{Errc::not_found, "no SASL user '" + user + "'"};
  std::string realm = get("realm").empty() ? std::string(kRealm) : get("realm");
  const std::string& uri = get("digest-uri");
  std::string expected = digest_md5_response(user, realm, it->second, nonce_, get("cnonce"),
                                             get("nc"), qop, get("authzid"), "AUTHENTICATE:" + uri);
  if (expected != get("response"))
    return Status{Errc::invalid_argument, "wrong password for SASL user '" + user + "'"};
  // As ZooKeeper's SaslServerCallbackHandler: the identity is the user who
  // proved the password. An authorization id naming anyone else grants
  // nothing; it is only noted.
  complete_ = true;
  username_ = user;
  if (!get("authzid").empty() && get("authzid") != user) ignored_authzid_ = get("authzid");
  return "rspauth=" + digest_md5_response(user, realm, it->second, nonce_, get("cnonce"), get("nc"),
                                          qop, get("authzid"), ":" + uri);
}

sdk::Result<JaasSections> read_jaas_sections(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status{Errc::not_found, path + ": cannot read the JAAS configuration"};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  // Name { LoginModule flag key="value" ...; ... };  with // and /* */ comments.
  size_t i = 0;
  auto bad = [&](const std::string& what) {
    return Status{Errc::invalid_argument, path + ": offset " + std::to_string(i) + ": " + what};
  };
  auto skip = [&] {
    while (i < text.size()) {
      if (std::isspace(static_cast<unsigned char>(text[i]))) {
        ++i;
      } else if (text.compare(i, 2, "//") == 0) {
        while (i < text.size() && text[i] != '\n') ++i;
      } else if (text.compare(i, 2, "/*") == 0) {
        size_t e = text.find("*/", i + 2);
        i = e == std::string::npos ? text.size() : e + 2;
      } else {
        break;
      }
    }
  };
  auto word = [&] {
    size_t b = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) &&
           text[i] != '{' && text[i] != '}' && text[i] != ';' && text[i] != '=' && text[i] != '"')
      ++i;
    return text.substr(b, i - b);
  };
  JaasSections out;
  while (true) {
    skip();
    if (i >= text.size()) break;
    std::string name = word();
    if (name.empty()) return bad("expected a section name");
    skip();
    if (i >= text.size() || text[i] != '{') return bad("expected '{' after " + name);
    ++i;
    auto& options = out[name];
    while (true) {
      skip();
      if (i >= text.size()) return bad("the " + name + " section is not closed");
      if (text[i] == '}') {
        ++i;
        skip();
        if (i < text.size() && text[i] == ';') ++i;
        break;
      }
      if (text[i] == ';') {
        ++i;
        continue;
      }
      std::string key = word();
      if (key.empty())
        return bad("unexpected '" + std::string(1, text[i]) + "' in the " + name + " section");
      skip();
      if (i < text.size() && text[i] == '=') {
        ++i;
        skip();
        std::string value;
        if (i < text.size() && text[i] == '"') {
          ++i;
          while (i < text.size() && text[i] != '"') {
            if (text[i] == '\\' && i + 1 < text.size()) ++i;
            value += text[i++];
          }
          if (i >= text.size()) return bad(key + "'s quoted value is not closed");
          ++i;
        } else {
          value = word();
        }
        options[key] = value;
      }
      // else: the login module's class or its flag
    }
  }
  return out;
}

sdk::Result<SaslUsers> jaas_users(const JaasSections& jaas, const std::string& path,
                                  const std::string& section) {
  auto it = jaas.find(section);
  if (it == jaas.end())
    return Status{Errc::invalid_argument, path + ": no \"" + section + "\" section (" + section +
                                              " { ... user_<name>=\"<password>\"; };)"};
  SaslUsers users;
  for (const auto& [k, v] : it->second)
    if (k.rfind("user_", 0) == 0 && k.size() > 5) users[k.substr(5)] = v;
  if (users.empty())
    return Status{Errc::invalid_argument,
                  path + ": the " + section + " section lists no user_<name>=\"<password>\""};
  return users;
}

sdk::Result<SaslUsers> read_jaas_users(const std::string& path) {
  auto jaas = read_jaas_sections(path);
  if (!jaas) return jaas.status();
  return jaas_users(jaas.value(), path, "Server");
}

}  // namespace corral::kernel
