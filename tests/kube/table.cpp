#include "table.h"

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace backstop::testing {

using nlohmann::json;

namespace {

std::time_t parse_rfc3339(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return in.fail() ? 0 : timegm(&tm);
}

std::string human_age(const std::string& timestamp) {
  const std::time_t t = parse_rfc3339(timestamp);
  if (t == 0) return "<unknown>";
  const long s = static_cast<long>(std::time(nullptr) - t);
  if (s < 120) return std::to_string(std::max(0L, s)) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

}  // namespace

json json_path(const json& object, const std::string& path) {
  json current = object;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      std::size_t end = path.find_first_of(".[", i + 1);
      const std::string key = path.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      if (!current.is_object() || !current.contains(key)) return nullptr;
      current = current[key];
      i = end == std::string::npos ? path.size() : end;
    } else if (path[i] == '[') {
      const std::size_t end = path.find(']', i);
      const std::string inner = path.substr(i + 1, end - i - 1);
      if (!current.is_array()) return nullptr;
      if (inner.rfind("?(@.", 0) == 0) {
        const std::size_t eq = inner.find("==");
        const std::string field = inner.substr(4, eq - 4);
        std::string value = inner.substr(eq + 2, inner.size() - eq - 3);
        if (!value.empty() && (value.front() == '"' || value.front() == '\''))
          value = value.substr(1, value.size() - 2);
        json found = nullptr;
        for (const auto& item : current) {
          if (item.is_object() && item.contains(field) && item[field].is_string() && item[field] == value) {
            found = item;
            break;
          }
        }
        if (found.is_null()) return nullptr;
        current = found;
      } else {
        const std::size_t index = std::stoul(inner);
        if (index >= current.size()) return nullptr;
        current = current[index];
      }
      i = end + 1;
    } else {
      return nullptr;
    }
  }
  return current;
}

json table(const Resource& r, const std::vector<json>& items, long revision) {
  json columns = json::array(
      {{{"name", "Name"}, {"type", "string"}, {"format", "name"}, {"description", "Name"}, {"priority", 0}}});
  json printer = r.printer_columns;
  if (printer.empty())
    printer = json::array({{{"name", "Age"}, {"type", "date"}, {"jsonPath", ".metadata.creationTimestamp"}}});
  for (const auto& c : printer) {
    columns.push_back({{"name", c.at("name")},
                       {"type", c.value("type", "string")},
                       {"format", c.value("format", "")},
                       {"description", c.value("description", "")},
                       {"priority", c.value("priority", 0)}});
  }
  json rows = json::array();
  for (const json& item : items) {
    json cells = json::array({item.at("metadata").at("name")});
    for (const auto& c : printer) {
      const json value = json_path(item, c.at("jsonPath").get<std::string>());
      if (value.is_null()) {
        cells.push_back(nullptr);
      } else if (c.value("type", "string") == "date" && value.is_string()) {
        cells.push_back(human_age(value.get<std::string>()));
      } else {
        cells.push_back(value);
      }
    }
    rows.push_back(
        {{"cells", cells},
         {"object",
          {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", item.at("metadata")}}}});
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", {{"resourceVersion", std::to_string(revision)}}},
          {"columnDefinitions", columns},
          {"rows", rows}};
}

}  // namespace backstop::testing
