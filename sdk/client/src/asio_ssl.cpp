// Boost.Asio's compiled SSL half, for the client's TLS connections
// (ZooKeeper's secure client port).
#include <boost/asio/ssl/impl/src.hpp>
