// fmt's implementation, compiled once for the lean programs (CMakeLists.txt, HV_VSS_LEAN), in
// place of Debian's shared libfmt. Header-only, fmt compiles format-inl.h again in every file that
// includes <fmt/core.h>, spdlog's headers included: a quarter of the build. Here FMT_FUNC is empty,
// so format-inl.h's functions are defined once, and the templates format.h declares but does not
// define are instantiated for char, the only character type the programs format.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
