// Where the Kubernetes API is and how to authenticate (DOMAIN §10):
//   - in a Pod: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT and the
//     service-account token, CA certificate and namespace mounted under
//     /var/run/secrets/kubernetes.io/serviceaccount;
//   - on a workstation: a kubeconfig file (KUBECONFIG or ~/.kube/config), its
//     current context (or a named one): the cluster's server and CA, the
//     user's bearer token (or token file), the context's namespace.
// Client certificates and exec/auth-provider plugins are not supported; they
// are reported as such instead of failing later with a 401.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace backstop::kube {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KubeConfig {
  std::string server;                     // https://10.0.0.1:443
  std::optional<std::string> token;       // bearer token (as read when loaded)
  std::optional<std::string> token_file;  // where it was read: read again as it rotates (TokenSource)
  std::optional<std::string> ca_file;     // PEM file to trust (none: the system store)
  std::optional<std::string> ca_data;     // PEM bytes (certificate-authority-data, decoded)
  bool insecure_skip_tls_verify = false;
  std::string namespace_name = "default";
  std::string source;  // where it came from, for messages
};

// In-cluster configuration; `root` replaces "/" for the mounted files (tests).
// Throws ConfigError naming what is missing.
KubeConfig in_cluster(const std::map<std::string, std::string>& env, const std::string& root = "");

// A kubeconfig file; `context` empty: its current-context. Throws ConfigError
// naming the file and what is wrong.
KubeConfig from_kubeconfig(const std::string& path, const std::string& context = "");

// In a Pod the in-cluster configuration, else KUBECONFIG (first file) or
// $HOME/.kube/config.
KubeConfig load(const std::map<std::string, std::string>& env);

}  // namespace backstop::kube
