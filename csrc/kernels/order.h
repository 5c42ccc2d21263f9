// What an empty max (min) reduction gives, for tropical.cc and extreme.cc:
// -inf (+inf) for floating types, the type's lowest (highest) value for
// integers (no infinity there, and max-plus on integers is exact).
#pragma once

#include <limits>
#include <type_traits>

namespace contract {

template <typename T, bool kMax>
constexpr T Identity() {
  if constexpr (std::is_floating_point_v<T>)
    return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  else
    return kMax ? std::numeric_limits<T>::min() : std::numeric_limits<T>::max();
}

}  // namespace contract
