// Boost.JSON's compiled part, built here once (it is header-only in Boost 1.81 when one
// translation unit includes src.hpp), so no other file pays for it.
#include <boost/json/src.hpp>
