// Boost.Asio's compiled SSL half. Only this module speaks TLS, so it is built
// here rather than into the SDK, which then needs no OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
