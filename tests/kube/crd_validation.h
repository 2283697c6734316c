// CustomResourceDefinition validation as the real API server does it on create
// and update (k8s.io/apiextensions-apiserver: pkg/apis/apiextensions/validation
// and the structural-schema rules of pkg/apiserver/schema), for the Kubernetes
// API test server: a CRD a real cluster refuses must be refused here too, with
// the same field paths and messages. Pure: JSON in, field errors out.
//
// What is enforced and what is not: see the header of crd_validation.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace backstop::testing {

// One validation error, as k8s.io/apimachinery's field.Error.
struct FieldError {
  enum class Type { Required, Forbidden, Invalid, NotSupported, Duplicate, TypeInvalid, TooLong, TooMany };

  std::string path;  // e.g. spec.validation.openAPIV3Schema.properties[metadata]
  Type type = Type::Invalid;
  std::optional<nlohmann::json> value;  // the offending value (Invalid, NotSupported)
  std::string detail;

  // "Forbidden: must not ...", "Invalid value: \"x\": ..." (field.Error.ErrorBody).
  [[nodiscard]] std::string body() const;
  // "<path>: <body>" (field.Error.Error).
  [[nodiscard]] std::string message() const;
  // FieldValueRequired, FieldValueForbidden, FieldValueInvalid, FieldValueNotSupported,
  // FieldValueDuplicate, FieldValueTypeInvalid, FieldValueTooLong, FieldValueTooMany.
  [[nodiscard]] std::string reason() const;

  bool operator==(const FieldError&) const = default;
};

// Every error of a CRD (apiextensions.k8s.io/v1, as sent by a client) on create.
// Empty: the real API server would accept it.
std::vector<FieldError> validate_crd(const nlohmann::json& crd);

// On update: the errors of `crd` itself, then the fields that may not change
// from `old` (group, names.plural, and, the CRD being established, scope and
// names.kind).
std::vector<FieldError> validate_crd_update(const nlohmann::json& crd, const nlohmann::json& old);

// The 422 Status the real API server answers with for these errors.
nlohmann::json crd_invalid_status(const std::string& name, const std::vector<FieldError>& errors);

// The same for an object of any kind: "<Kind>.<group> \"name\" is invalid: ..."
// (apierrors.NewInvalid), the causes in details.
nlohmann::json invalid_status(const std::string& kind, const std::string& group, const std::string& name,
                              const std::vector<FieldError>& errors);

// Go's %q of a string.
std::string go_quote(const std::string& s);

}  // namespace backstop::testing
