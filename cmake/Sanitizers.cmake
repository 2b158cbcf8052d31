if(BLIP_SANITIZE)
  # No vptr check: it reads vtables through a pipe-based probe that fails when the
  # process is out of descriptors (descriptor_limit_test runs blip there on purpose) and then
  # reports every virtual call as a bad type. ASan still catches the use-after-free.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
