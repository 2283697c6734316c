// The in-cluster service-account token rotates (the kubelet swaps the
// projected file before the token expires, after about an hour): the client
// sends the file's current token, never the first one forever.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kube/client.h"
#include "kube/config.h"

namespace backstop::kube {
namespace {

namespace fs = std::filesystem;

// Records each request's Authorization header; answers 401 to any token but
// `accepted` (when set), as an API server does to an expired one.
class RecordingTransport : public net::HttpTransport {
 public:
  RecordingTransport(std::vector<std::string>& seen, const std::string& accepted) : seen_(seen), accepted_(accepted) {}
  net::HttpResponse send(const net::HttpRequest& request) override {
    const auto it = request.headers.find("Authorization");
    const std::string authorization = it == request.headers.end() ? "" : it->second;
    seen_.push_back(authorization);
    if (!accepted_.empty() && authorization != "Bearer " + accepted_) {
      return {401,
              {},
              R"({"kind":"Status","status":"Failure","reason":"Unauthorized","message":"Unauthorized","code":401})"};
    }
    return {200, {}, R"({"kind":"Namespace","metadata":{"name":"trading"}})"};
  }

 private:
  std::vector<std::string>& seen_;
  const std::string& accepted_;
};

class ServiceAccount {
 public:
  ServiceAccount() {
    char pattern[] = "/tmp/backstop-sa.XXXXXX";
    root = mkdtemp(pattern);
    fs::create_directories(dir());
    std::ofstream(dir() + "/namespace") << "trading";
  }
  ~ServiceAccount() { fs::remove_all(root); }
  [[nodiscard]] std::string dir() const { return root + "/var/run/secrets/kubernetes.io/serviceaccount"; }
  // As the kubelet's atomic writer does: a new file renamed over the old one.
  void rotate_to(const std::string& token) const {
    std::ofstream(dir() + "/.token.new") << token << "\n";
    fs::rename(dir() + "/.token.new", dir() + "/token");
  }
  [[nodiscard]] KubeConfig config() const {
    return in_cluster({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, root);
  }
  std::string root;
};

TEST(InClusterToken, RotatedFileIsReadAgainBeforeTheNextRequest) {
  ServiceAccount sa;
  sa.rotate_to("token-1");
  std::vector<std::string> seen;
  const std::string accept_any;
  KubeClient client(sa.config(), std::make_unique<RecordingTransport>(seen, accept_any));
  ASSERT_TRUE(client.get("/api/v1/namespaces/trading"));
  sa.rotate_to("token-2");
  ASSERT_TRUE(client.get("/api/v1/namespaces/trading"));
  EXPECT_EQ(seen, (std::vector<std::string>{"Bearer token-1", "Bearer token-2"}));
}

// A change the file's stamp does not show (same inode, size and time): the
// API's 401 makes the client read the file again and retry once.
TEST(InClusterToken, RefusedTokenIsReadAgainAndTheRequestRetriedOnce) {
  ServiceAccount sa;
  sa.rotate_to("token-1");
  std::string accepted = "token-1";
  std::vector<std::string> seen;
  KubeClient client(sa.config(), std::make_unique<RecordingTransport>(seen, accepted));
  ASSERT_TRUE(client.get("/api/v1/namespaces/trading"));
  const auto written = fs::last_write_time(sa.dir() + "/token");
  std::ofstream(sa.dir() + "/token", std::ios::in | std::ios::out) << "token-2";  // in place, same size
  fs::last_write_time(sa.dir() + "/token", written);
  accepted = "token-2";  // token-1 expired
  ASSERT_TRUE(client.get("/api/v1/namespaces/trading"));
  EXPECT_EQ(seen, (std::vector<std::string>{"Bearer token-1", "Bearer token-1", "Bearer token-2"}));
  // Not a loop: a token the file cannot replace is refused once, and the 401 reported.
  accepted = "token-3";
  EXPECT_THROW((void)client.get("/api/v1/namespaces/trading"), ApiError);
  EXPECT_EQ(seen.size(), 4u);
}

}  // namespace
}  // namespace backstop::kube
