// Conversions between absl::Time and google.protobuf.Timestamp.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace gantry {

inline void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
}

// PostgreSQL's epoch seconds (extract(epoch ...), microsecond precision) as a Timestamp.
inline void EpochSecondsToProto(double epoch_seconds, google::protobuf::Timestamp* out) {
  ToProto(absl::FromUnixMicros(static_cast<int64_t>(epoch_seconds * 1e6 + (epoch_seconds >= 0 ? 0.5 : -0.5))), out);
}

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace gantry
