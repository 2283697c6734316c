#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace backstop::kube {
namespace {

constexpr const char* kServiceAccount = "/var/run/secrets/kubernetes.io/serviceaccount";

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string base64_decode(const std::string& in, const std::string& what) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0;
  unsigned value = 0;
  for (const char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const auto at = alphabet.find(c);
    if (at == std::string::npos) throw ConfigError(what + " is not valid base64");
    value = (value << 6) | static_cast<unsigned>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
    }
  }
  return out;
}

// The entry of `list` (clusters, users, contexts) called `name`.
YAML::Node named(const YAML::Node& list, const std::string& name, const std::string& kind, const std::string& path) {
  if (list && list.IsSequence()) {
    for (const auto& entry : list) {
      if (entry["name"] && entry["name"].as<std::string>() == name) return entry[kind];
    }
  }
  throw ConfigError(path + ": no " + kind + " named '" + name + "'");
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

KubeConfig in_cluster(const std::map<std::string, std::string>& env, const std::string& root) {
  const auto host = env.find("KUBERNETES_SERVICE_HOST");
  const auto port = env.find("KUBERNETES_SERVICE_PORT");
  if (host == env.end() || port == env.end()) {
    throw ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT are not set");
  }
  const std::string dir = root + kServiceAccount;
  KubeConfig c;
  c.source = "in-cluster service account (" + dir + ")";
  // An IPv6 service address needs brackets in a URL.
  const std::string address = host->second.find(':') != std::string::npos ? "[" + host->second + "]" : host->second;
  c.server = "https://" + address + ":" + port->second;
  c.token = read_file(dir + "/token");
  if (!c.token) throw ConfigError("in-cluster: cannot read the service-account token " + dir + "/token");
  *c.token = trimmed(*c.token);
  c.token_file = dir + "/token";  // projected, rotated by the kubelet
  if (read_file(dir + "/ca.crt")) c.ca_file = dir + "/ca.crt";
  if (const auto ns = read_file(dir + "/namespace")) c.namespace_name = trimmed(*ns);
  return c;
}

KubeConfig from_kubeconfig(const std::string& path, const std::string& context_name) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw ConfigError("cannot read kubeconfig " + path + ": " + e.what());
  }
  const std::string name = !context_name.empty()     ? context_name
                           : root["current-context"] ? root["current-context"].as<std::string>()
                                                     : "";
  if (name.empty()) throw ConfigError(path + ": no current-context and no context given");
  const YAML::Node context = named(root["contexts"], name, "context", path);
  if (!context || !context["cluster"]) throw ConfigError(path + ": context '" + name + "' names no cluster");
  const YAML::Node cluster = named(root["clusters"], context["cluster"].as<std::string>(), "cluster", path);
  KubeConfig c;
  c.source = path + " (context " + name + ")";
  if (!cluster || !cluster["server"]) throw ConfigError(path + ": cluster of context '" + name + "' has no server");
  c.server = cluster["server"].as<std::string>();
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (cluster["certificate-authority"]) {
    std::string ca = cluster["certificate-authority"].as<std::string>();
    if (!ca.empty() && ca.front() != '/') ca = directory_of(path) + "/" + ca;  // relative to the file
    c.ca_file = ca;
  }
  if (cluster["certificate-authority-data"]) {
    c.ca_data =
        base64_decode(cluster["certificate-authority-data"].as<std::string>(), path + ": certificate-authority-data");
  }
  if (cluster["insecure-skip-tls-verify"]) c.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
  if (context["namespace"]) c.namespace_name = context["namespace"].as<std::string>();
  if (context["user"]) {
    const YAML::Node user = named(root["users"], context["user"].as<std::string>(), "user", path);
    if (user && user["token"]) {
      c.token = user["token"].as<std::string>();
    } else if (user && user["tokenFile"]) {
      c.token = read_file(user["tokenFile"].as<std::string>());
      if (!c.token) throw ConfigError(path + ": cannot read tokenFile " + user["tokenFile"].as<std::string>());
      *c.token = trimmed(*c.token);
      c.token_file = user["tokenFile"].as<std::string>();
    } else if (user && (user["client-certificate"] || user["client-certificate-data"] || user["exec"] ||
                        user["auth-provider"])) {
      throw ConfigError(path + ": user '" + context["user"].as<std::string>() +
                        "' authenticates with a client certificate or a plugin, which Backstop does not support; "
                        "use a service-account token");
    }
  }
  return c;
}

KubeConfig load(const std::map<std::string, std::string>& env) {
  if (env.count("KUBERNETES_SERVICE_HOST") != 0) return in_cluster(env);
  if (const auto it = env.find("KUBECONFIG"); it != env.end() && !it->second.empty()) {
    return from_kubeconfig(it->second.substr(0, it->second.find(':')));
  }
  const auto home = env.find("HOME");
  if (home == env.end()) throw ConfigError("no cluster: not in a Pod, KUBECONFIG and HOME are not set");
  return from_kubeconfig(home->second + "/.kube/config");
}

}  // namespace backstop::kube
