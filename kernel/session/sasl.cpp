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
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    }
    out[key] = value;
  }
  return out;
}

}  // namespace

std::string digest_md5_response(std::string_view user, std::string_view realm, std::string_view password,
                                std::string_view nonce, std::string_view cnonce, std::string_view nc,
                                std::string_view qop, std::string_view authzid, std::string_view a2) {
  std::string a1 = md5(std::string(user) + ":" + std::string(realm) + ":" + std::string(password)) + ":" +
                   std::string(nonce) + ":" + std::string(cnonce);
  if (!authzid.empty()) a1 += ":" + std::string(authzid);
  return hex(md5(hex(md5(a1)) + ":" + std::string(nonce) + ":" + std::string(nc) + ":" + std::string(cnonce) + ":" +
                 std::string(qop) + ":" + hex(md5(a2))));
}

sdk::Result<std::string> DigestMd5Server::step(std::string_view token) {
  if (complete_) return Status{Errc::invalid_argument, "the SASL exchange is already complete"};
  if (stage_ == 0) {
    // DIGEST-MD5 starts with the server; whatever the client opened with.
    stage_ = 1;
    return "realm=\"" + std::string(kRealm) + "\",nonce=\"" + nonce_ + "\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
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
    return Status{Errc::invalid_argument, "the DIGEST-MD5 response lacks username, cnonce, nc or response"};
  if (get("nonce") != nonce_) return Status{Errc::invalid_argument, "the DIGEST-MD5 response names another nonce"};
  if (qop != "auth") return Status{Errc::invalid_argument, "only qop=auth is offered, not " + qop};
  auto it = users_.find(user);
  if (it == users_.end()) return Status{Errc::not_found, "no SASL user '" + user + "'"};
  std::string realm = get("realm").empty() ? std::string(kRealm) : get("realm");
  const std::string& uri = get("digest-uri");
  std::string expected = digest_md5_response(user, realm, it->second, nonce_, get("cnonce"), get("nc"), qop,
                                             get("authzid"), "AUTHENTICATE:" + uri);
  if (expected != get("response")) return Status{Errc::invalid_argument, "wrong password for SASL user '" + user + "'"};
  complete_ = true;
  username_ = get("authzid").empty() ? user : get("authzid");
  return "rspauth=" + digest_md5_response(user, realm, it->second, nonce_, get("cnonce"), get("nc"), qop,
                                          get("authzid"), ":" + uri);
}

sdk::Result<SaslUsers> read_jaas_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status{Errc::not_found, path + ": cannot read the JAAS configuration"};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  // Sections: Name { entries ... };  Only "Server" holds the users.
  size_t at = 0;
  while (true) {
    size_t name = text.find("Server", at);
    if (name == std::string::npos)
      return Status{Errc::invalid_argument, path + ": no \"Server\" section (Server { ... user_<name>=\"<password>\"; };)"};
    size_t open = text.find('{', name);
    bool standalone_word = (name == 0 || !std::isalnum(static_cast<unsigned char>(text[name - 1]))) &&
                           open != std::string::npos &&
                           text.find_first_not_of(" \t\r\n", name + 6) == open;
    if (!standalone_word) {
      at = name + 6;
      continue;
    }
    size_t close = text.find('}', open);
    if (close == std::string::npos) return Status{Errc::invalid_argument, path + ": the Server section is not closed"};
    std::string body = text.substr(open + 1, close - open - 1);
    SaslUsers users;
    size_t p = 0;
    while ((p = body.find("user_", p)) != std::string::npos) {
      size_t eq = body.find('=', p);
      if (eq == std::string::npos) break;
      std::string user = body.substr(p + 5, eq - p - 5);
      while (!user.empty() && std::isspace(static_cast<unsigned char>(user.back()))) user.pop_back();
      size_t q1 = body.find('"', eq), q2 = q1 == std::string::npos ? q1 : body.find('"', q1 + 1);
      if (q2 == std::string::npos)
        return Status{Errc::invalid_argument, path + ": user_" + user + " needs a quoted password"};
      users[user] = body.substr(q1 + 1, q2 - q1 - 1);
      p = q2 + 1;
    }
    if (users.empty()) return Status{Errc::invalid_argument, path + ": the Server section lists no user_<name>=\"<password>\""};
    return users;
  }
}

}  // namespace corral::kernel
