// Where the controller finds the Kubernetes API: in-cluster service account or
// a kubeconfig, with the errors a user can act on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kube/config.h"

namespace backstop::kube {
namespace {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/backstop-kubeconfig.XXXXXX";
    path = mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::filesystem::create_directories(std::filesystem::path(path + "/" + name).parent_path());
    std::ofstream(path + "/" + name) << text;
  }
  std::string path;
};

TEST(InCluster, ServiceAccountFilesAndServiceAddress) {
  TempDir root;
  root.write("var/run/secrets/kubernetes.io/serviceaccount/token", "eyJhbGciOi.token\n");
  root.write("var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "-----BEGIN CERTIFICATE-----\n");
  root.write("var/run/secrets/kubernetes.io/serviceaccount/namespace", "trading");
  const KubeConfig c =
      in_cluster({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, root.path);
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.token, "eyJhbGciOi.token");
  EXPECT_EQ(c.ca_file, root.path + "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
  EXPECT_EQ(c.namespace_name, "trading");
  EXPECT_EQ(in_cluster({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, root.path).server,
            "https://[fd00::1]:443");
}

TEST(InCluster, MissingPiecesSayWhat) {
  TempDir root;
  try {
    (void)in_cluster({}, root.path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  }
  try {
    (void)in_cluster({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, root.path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("serviceaccount/token"), std::string::npos) << e.what();
  }
}

TEST(Kubeconfig, CurrentContextClusterUserAndNamespace) {
  TempDir dir;
  dir.write("config", R"(apiVersion: v1
kind: Config
current-context: desk
clusters:
- name: prod
  cluster: {server: "https://k8s.example:6443/", certificate-authority: ca.pem}
- name: lab
  cluster: {server: "https://lab:6443", certificate-authority-data: "LS0tLS1CRUdJTg==", insecure-skip-tls-verify: true}
users:
- name: bot
  user: {token: abc.def}
- name: file-bot
  user: {tokenFile: )" + dir.path +
                          R"(/token}
- name: cert-user
  user: {client-certificate-data: AAAA, client-key-data: BBBB}
contexts:
- name: desk
  context: {cluster: prod, user: bot, namespace: trading}
- name: lab
  context: {cluster: lab, user: file-bot}
- name: cert
  context: {cluster: prod, user: cert-user}
)");
  dir.write("token", "from-file\n");
  const KubeConfig desk = from_kubeconfig(dir.path + "/config");
  EXPECT_EQ(desk.server, "https://k8s.example:6443");
  EXPECT_EQ(desk.token, "abc.def");
  EXPECT_EQ(desk.ca_file, dir.path + "/ca.pem");  // relative to the kubeconfig
  EXPECT_EQ(desk.namespace_name, "trading");
  const KubeConfig lab = from_kubeconfig(dir.path + "/config", "lab");
  EXPECT_EQ(lab.token, "from-file");
  EXPECT_EQ(lab.ca_data, "-----BEGIN");
  EXPECT_TRUE(lab.insecure_skip_tls_verify);
  EXPECT_EQ(lab.namespace_name, "default");
  try {
    (void)from_kubeconfig(dir.path + "/config", "cert");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("client certificate or a plugin"), std::string::npos) << e.what();
  }
  try {
    (void)from_kubeconfig(dir.path + "/config", "nowhere");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no context named 'nowhere'"), std::string::npos) << e.what();
  }
}

TEST(Kubeconfig, LoadPrefersTheClusterThenKubeconfigThenHome) {
  TempDir dir;
  dir.write(".kube/config",
            "current-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
            "contexts: [{name: c, context: {cluster: k}}]\n");
  EXPECT_EQ(load({{"HOME", dir.path}}).server, "http://127.0.0.1:1");
  EXPECT_EQ(load({{"HOME", "/nowhere"}, {"KUBECONFIG", dir.path + "/.kube/config:/other"}}).server,
            "http://127.0.0.1:1");
  EXPECT_THROW((void)load({}), ConfigError);
  EXPECT_THROW((void)from_kubeconfig(dir.path + "/missing"), ConfigError);
}

}  // namespace
}  // namespace backstop::kube
