// Transport: reliable, ordered byte streams between this server and clients or
// peers. The client port and the peer ports both run over it.
//
// Streams carry bytes, not messages: the owner of a connection does its own
// framing (ZooKeeper's 4-byte length prefix on the client port, the same on
// peer links). All callbacks run on the kernel's event loop.
//
// A transport may encrypt (the `tls` module does): it says what it
// established on each connection through Connection::security(), and keeps
// separate certificates and policies for each purpose a stream serves.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "corral/sdk/plugin.hpp"
#include "corral/sdk/types.hpp"

namespace corral::sdk {

// Receives what happens on one connection. Owned by the caller of start().
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler();
  // Bytes arrived. `data` is valid only during the call.
  virtual void on_data(BytesView data) = 0;
  // The stream ended: peer closed (status ok) or an error (status says which).
  // Not called after the owner itself calls close().
  virtual void on_closed(const Status& why) = 0;
  // Everything queued with send() has been written (after a time when it
  // had not): lets the owner resume reading from a slow consumer.
  virtual void on_drained() {}
};

// What a connection's security layer established. A plaintext connection
// has the defaults.
struct ConnectionSecurity {
  bool encrypted = false;
  std::string protocol;  // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  // The other end presented a certificate that chains to a trusted authority
  // and is valid now. Only then are the fields below filled.
  bool peer_verified = false;
  std::string peer_subject;  // RFC 2253, most specific first: "CN=alice,OU=ops,O=Example"
  // The certificate's subjectAltName DNS names and IP addresses, then its
  // subject's common names.
  std::vector<std::string> peer_names;
};

// What a stream is for: an encrypting transport keeps separate certificates
// and policies for each (ZooKeeper's ssl.* for clients, ssl.quorum.* for peers).
enum class StreamPurpose { client, peer, admin };

struct ListenOptions {
  StreamPurpose purpose = StreamPurpose::client;
  // An encrypting transport also accepts plaintext connections on the same
  // port, told apart by their first bytes (ZooKeeper's portUnification).
  bool accept_plaintext = false;
};

struct ConnectOptions {
  StreamPurpose purpose = StreamPurpose::peer;
};

class Connection {
 public:
  virtual ~Connection();
  // Begins delivering bytes to `handler`, which must stay valid until
  // on_closed() or close().
  virtual void start(ConnectionHandler* handler) = 0;
  // Queues bytes for sending, in order. Never blocks: bytes queued while a
  // write is in flight go out together in the next write.
  virtual void send(Bytes data) = 0;
  // Bytes queued but not yet written; lets the owner apply back-pressure.
  virtual size_t queued_bytes() const = 0;
  // Stops reading; flushes queued bytes, then closes. No callbacks after this.
  virtual void close() = 0;
  // Stops reading or resumes it (back-pressure on a slow consumer).
  virtual void pause_reading(bool paused) = 0;
  virtual std::string remote_address() const = 0;  // "127.0.0.1:51234"
  virtual std::string local_address() const = 0;
  // What the transport established; valid once the connection is handed to
  // its owner (a handshake, when there is one, is over by then).
  virtual ConnectionSecurity security() const;
};

// A listening socket; destroying it stops accepting.
class Listener {
 public:
  virtual ~Listener();
  // The bound endpoint, with the real port when 0 was asked for.
  virtual Endpoint local_endpoint() const = 0;
};

class Transport : public Plugin {
 public:
  ~Transport() override;
  using AcceptFn = std::function<void(std::shared_ptr<Connection>)>;
  using ConnectFn = std::function<void(Result<std::shared_ptr<Connection>>)>;

  // Binds and listens; every accepted connection goes to `on_accept`, not yet
  // started (an encrypting transport hands it over once its handshake is
  // done). Errors name the address ("bind 127.0.0.1:2181: Address in use").
  virtual Result<std::unique_ptr<Listener>> listen(const Endpoint& where,
                                                   const ListenOptions& options,
                                                   AcceptFn on_accept) = 0;
  // Resolves and connects; `done` gets the connection (not yet started) or the
  // reason it failed. `timeout_ms` bounds resolution, connect and handshake.
  virtual void connect(const Endpoint& where, int64_t timeout_ms, const ConnectOptions& options,
                       ConnectFn done) = 0;
};

}  // namespace corral::sdk
