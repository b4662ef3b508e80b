// Callbacks that may outlive the object that scheduled them.
//
// An object that posts work, arms timers or starts asynchronous I/O with
// `this` captured holds a Lifeline; each callback captures a Ref taken from
// it and returns at once when the Ref says the object is gone:
//
//   timer_ = exec.schedule(delay, [this, alive = alive_.ref()] {
//     if (!alive) return;
//     tick();
//   });
//
// Everything runs on one loop thread, so no locking is involved. Not part of
// the plugin contract.
#pragma once

#include <memory>

namespace corral::common {

class Lifeline {
 public:
  class Ref {
   public:
    Ref() = default;
    // True while the Lifeline it came from has not ended.
    explicit operator bool() const noexcept { return flag_ && *flag_; }

   private:
    friend class Lifeline;
    explicit Ref(std::shared_ptr<bool> flag) : flag_(std::move(flag)) {}
    std::shared_ptr<bool> flag_;
  };

  Lifeline() = default;
  ~Lifeline() { end(); }
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;

  Ref ref() const { return Ref(flag_); }
  bool alive() const noexcept { return *flag_; }
  // Every Ref taken so far reads false from now on.
  void end() noexcept { *flag_ = false; }
  // Ends the Refs taken so far; Refs taken after this read true again (an
  // object that stops and starts over).
  void renew() {
    end();
    flag_ = std::make_shared<bool>(true);
  }

 private:
  std::shared_ptr<bool> flag_ = std::make_shared<bool>(true);
};

}  // namespace corral::common
