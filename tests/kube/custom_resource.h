// What the real API server (k8s.io/apiextensions-apiserver, v1.24 and later)
// does with a custom resource on create, update and patch, its status
// subresource included, for the Kubernetes API test server: unknown fields
// pruned (and reported, for ?fieldValidation=Strict or Warn), nulls of
// non-nullable fields dropped, then, after defaulting, the object validated
// against its CRD version's openAPIV3Schema with the real field paths and
// messages (k8s.io/kube-openapi's validator as apiextensions-apiserver turns
// its errors into field errors), x-kubernetes-list-type set and map items
// unique, and the x-kubernetes-validations rules evaluated (cel.h's subset).
// Pure: JSON in, paths and field errors out.
//
// Enforced (validate_custom_resource), in the real server's order:
//   metadata.name: required, a DNS-1123 subdomain of at most 253 characters;
//   schema: type (nullable, x-kubernetes-int-or-string,
//     x-kubernetes-preserve-unknown-fields, x-kubernetes-embedded-resource's
//     apiVersion/kind/metadata), format date-time and date, enum,
//     pattern (ECMAScript, std::regex), maximum/minimum (exclusive too),
//     multipleOf, maxLength/minLength (in characters), maxItems/minItems,
//     maxProperties/minProperties, required, through properties,
//     additionalProperties and items;
//   x-kubernetes-list-type set (no duplicate items) and map (no two items
//     with the same keys): "Duplicate value" at the later item;
//   x-kubernetes-validations: each rule at the node it sits on, for every
//     value there (array items too); a false rule is "Invalid value:
//     \"<type>\": <message>" (or "failed rule: <rule>"); an evaluation error
//     "<error> evaluating rule: <rule>"; transition rules (oldSelf) only on
//     update, for values reached through object properties; no rule is
//     evaluated when an error above would block CEL in the real server
//     (Unsupported value, Required, Too long, Too many, a wrong type): the
//     "some validation rules were not checked" error is added instead.
// Not enforced: ratcheting (a v1.30+ server lets an update keep a value that
//   was already invalid; here every update is validated in full), CEL cost
//   budgets, messageExpression, the rule's reason and fieldPath, formats
//   other than date-time and date (int32, int64, ... are accepted as the
//   number they are), labels and annotations syntax, ownerReferences,
//   finalizers, the scale subresource. The errors of one object come in a
//   fixed order (properties sorted), where kube-openapi's map walk has none.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crd_validation.h"

namespace backstop::testing {

// Removes every field the schema does not declare (not under
// x-kubernetes-preserve-unknown-fields), metadata's included (only ObjectMeta's
// fields stay), and the nulls of non-nullable fields. Returns the unknown
// fields' paths ("spec.foo", "metadata.bar", "spec.list[0].x"), sorted, as
// ?fieldValidation=Strict reports them.
std::vector<std::string> prune_custom_resource(nlohmann::json& object, const nlohmann::json& schema);

// Every error of `object` (pruned and defaulted) against `schema`; `old` is the
// stored object on update (for transition rules), nullptr on create.
std::vector<FieldError> validate_custom_resource(const nlohmann::json& object, const nlohmann::json& schema,
                                                 const nlohmann::json* old);

}  // namespace backstop::testing
