add_library(blip_warnings INTERFACE)
target_compile_options(blip_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  $<$<BOOL:${BLIP_WERROR}>:-Werror>)
