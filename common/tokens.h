// Secrets: generation, hashing for storage, and constant-time comparison.
// Tokens are never stored; only their SHA-256 is.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

namespace gantry {

// A random token of `bytes` bytes from the OpenSSL CSPRNG, base64url without padding.
// Aborts if the CSPRNG fails (there is no safe fallback).
std::string RandomToken(int bytes = 32);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// Compares in time that depends only on the lengths, not on where the strings differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace gantry
