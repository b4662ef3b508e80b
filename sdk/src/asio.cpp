// Boost.Asio's compiled half, built once into the SDK library. Kernel and
// modules then share one scheduler and one per-thread call stack; with Asio
// header-only, each module would keep its own copies of Asio's thread-local
// state and crash when run by the kernel's io_context.
#include <boost/asio/impl/src.hpp>
