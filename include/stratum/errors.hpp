// Exceptions thrown by stratum. Every message names what is at fault: the layer, the file or
// the shape, so that a user can act on it without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace stratum {

/// Base class of every error stratum throws on bad input.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A tensor whose shape does not fit where it was given.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read, written or understood.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace stratum
