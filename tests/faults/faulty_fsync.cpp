// corral-faulty-fsync: an LD_PRELOAD library for the fault suite's
// `fsync-fail` nemesis. While a file named `fsync-fails` exists in the
// process's working directory, fsync, fdatasync and sync_file_range fail
// with EIO (as a dying disk's do); otherwise they do what they always do.
// The fault suite starts each server in its own folder, so one flag file
// fails one server's disk.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace {

bool failing() { return access("fsync-fails", F_OK) == 0; }

template <typename Fn>
Fn real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

int fsync(int fd) {
  static auto next = real<int (*)(int)>("fsync");
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return next(fd);
}

int fdatasync(int fd) {
  static auto next = real<int (*)(int)>("fdatasync");
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return next(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
  static auto next = real<int (*)(int, off_t, off_t, unsigned int)>("sync_file_range");
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return next(fd, offset, nbytes, flags);
}

}  // extern "C"
