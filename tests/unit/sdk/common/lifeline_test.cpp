#include "corral/common/lifeline.hpp"

#include <gtest/gtest.h>

using corral::common::Lifeline;

TEST(Lifeline, RefsReadTrueUntilTheOwnerEnds) {
  Lifeline::Ref kept;
  EXPECT_FALSE(kept);  // taken from nothing
  {
    Lifeline life;
    kept = life.ref();
    EXPECT_TRUE(kept);
    EXPECT_TRUE(life.alive());
  }
  EXPECT_FALSE(kept);  // the owner was destroyed
}

TEST(Lifeline, RenewEndsOldRefsOnly) {
  Lifeline life;
  auto before = life.ref();
  life.renew();
  auto after = life.ref();
  EXPECT_FALSE(before);
  EXPECT_TRUE(after);
  life.end();
  EXPECT_FALSE(after);
  EXPECT_FALSE(life.alive());
}
