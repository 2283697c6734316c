// Which images a StopMonitor may run: repositories and prefixes, refused
// entries at start, and the InvalidSpec a refused image becomes.
#include "controller/image_policy.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace backstop::controller {
namespace {

TEST(ImagePolicy, WithoutEntriesEveryImageIsAllowed) {
  const ImagePolicy policy;
  EXPECT_TRUE(policy.unrestricted());
  EXPECT_TRUE(policy.allows("evil.example/miner"));
}

TEST(ImagePolicy, ARepositoryAllowsItselfOnly) {
  const ImagePolicy policy({"ghcr.io/backstop/backstop", "localhost:5000/backstop"});
  EXPECT_TRUE(policy.allows("ghcr.io/backstop/backstop"));
  EXPECT_TRUE(policy.allows("localhost:5000/backstop"));  // a registry's port is no tag
  EXPECT_FALSE(policy.allows("ghcr.io/backstop/backstop-debug"));
  EXPECT_FALSE(policy.allows("ghcr.io/backstop"));
  EXPECT_FALSE(policy.allows("evil.example/ghcr.io/backstop/backstop"));
  EXPECT_FALSE(policy.allows(""));
}

TEST(ImagePolicy, APrefixAllowsWhatIsUnderIt) {
  const ImagePolicy policy({"registry.example.com/trading/*"});
  EXPECT_TRUE(policy.allows("registry.example.com/trading/backstop"));
  EXPECT_TRUE(policy.allows("registry.example.com/trading/team/backstop"));
  EXPECT_FALSE(policy.allows("registry.example.com/trading"));
  EXPECT_FALSE(policy.allows("registry.example.com/trading-evil/backstop"));
  EXPECT_FALSE(policy.allows("registry.example.com/"));
}

TEST(ImagePolicy, MalformedEntriesAreRefusedNamingThem) {
  for (const std::string entry : {"", "ghcr.io/backstop/backstop:1.2", "ghcr.io/backstop/backstop@sha256:ab",
                                  "registry.example.com/*/backstop", "registry.example.com*", "*", "a b"}) {
    try {
      ImagePolicy policy({entry});
      ADD_FAILURE() << "accepted \"" << entry << "\"";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + entry + "\""), std::string::npos) << e.what();
    }
  }
}

TEST(ImagePolicy, ARefusedImageIsAnInvalidSpecNamingTheFieldAndTheList) {
  const ImagePolicy policy({"ghcr.io/backstop/backstop", "registry.example.com/trading/*"});
  EXPECT_NO_THROW(policy.check(ImageSpec{"ghcr.io/backstop/backstop", "v1", "IfNotPresent"}));
  try {
    policy.check(ImageSpec{"evil.example/miner", "latest", "Always"});
    ADD_FAILURE() << "allowed evil.example/miner";
  } catch (const InvalidSpec& e) {
    EXPECT_EQ(std::string(e.what()),
              "spec.image.repository: \"evil.example/miner\" is not an image this controller may run (allowed: "
              "ghcr.io/backstop/backstop, registry.example.com/trading/*)");
  }
}

}  // namespace
}  // namespace backstop::controller
