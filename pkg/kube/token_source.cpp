#include "kube/token_source.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace backstop::kube {

TokenSource::TokenSource(const KubeConfig& config, std::chrono::seconds max_age)
    : token_(config.token), file_(config.token_file), max_age_(max_age) {
  if (file_) {
    read_stamp_ = stamp();
    read_at_ = std::chrono::steady_clock::now();
  }
}

std::optional<TokenSource::Stamp> TokenSource::stamp() const {
  struct stat st {};
  if (::stat(file_->c_str(), &st) != 0) return std::nullopt;
  return Stamp{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
               static_cast<std::int64_t>(st.st_size),
               static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

void TokenSource::read() {
  read_at_ = std::chrono::steady_clock::now();
  const auto before = stamp();
  std::ifstream in(*file_);
  if (!in) return;  // mid-swap or gone: the last token until it is back
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return;
  token_ = std::move(token);
  read_stamp_ = before;
}

std::optional<std::string> TokenSource::token() {
  const std::lock_guard lock(mutex_);
  if (file_ && (std::chrono::steady_clock::now() - read_at_ >= max_age_ || stamp() != read_stamp_)) read();
  return token_;
}

bool TokenSource::refresh() {
  const std::lock_guard lock(mutex_);
  if (!file_) return false;
  const auto before = token_;
  read();
  return token_ != before;
}

}  // namespace backstop::kube
