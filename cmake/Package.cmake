# The Debian package (CPack): `cmake --build BUILD --target package`, or scripts/package.
# /usr/bin/blip, the bare-metal examples as conffiles in /etc/blip/probes.d, the hardened
# systemd unit, the man page, the copyright and changelog; dependencies from the binary's
# shared libraries (dpkg-shlibdeps).
include(GNUInstallDirs)
set(BLIP_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(BLIP_DOC_STAGE ${CMAKE_CURRENT_BINARY_DIR}/package-docs)

# Debian wants the man page and the changelog compressed with gzip -9n (no name, no time).
file(MAKE_DIRECTORY ${BLIP_DOC_STAGE})
add_custom_command(
  OUTPUT ${BLIP_DOC_STAGE}/blip.1.gz ${BLIP_DOC_STAGE}/changelog.gz
  COMMAND gzip -9nc ${BLIP_PACKAGING_DIR}/blip.1 > ${BLIP_DOC_STAGE}/blip.1.gz
  COMMAND gzip -9nc ${BLIP_PACKAGING_DIR}/debian/changelog > ${BLIP_DOC_STAGE}/changelog.gz
  DEPENDS ${BLIP_PACKAGING_DIR}/blip.1 ${BLIP_PACKAGING_DIR}/debian/changelog
  VERBATIM)
add_custom_target(package_docs ALL DEPENDS ${BLIP_DOC_STAGE}/blip.1.gz ${BLIP_DOC_STAGE}/changelog.gz)

install(TARGETS blip RUNTIME DESTINATION bin)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/bare-metal/probes.d/
        DESTINATION /etc/blip/probes.d FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/blip.service DESTINATION lib/systemd/system)
install(FILES ${BLIP_DOC_STAGE}/blip.1.gz DESTINATION share/man/man1)
install(FILES ${BLIP_PACKAGING_DIR}/debian/copyright ${BLIP_DOC_STAGE}/changelog.gz
        DESTINATION share/doc/blip)

# conffiles: every file under /etc, so an operator's edits survive upgrades.
file(GLOB BLIP_EXAMPLES RELATIVE ${PROJECT_SOURCE_DIR}/deploy/bare-metal/probes.d
     ${PROJECT_SOURCE_DIR}/deploy/bare-metal/probes.d/*.toml)
list(SORT BLIP_EXAMPLES)
set(BLIP_CONFFILES "")
foreach(example IN LISTS BLIP_EXAMPLES)
  string(APPEND BLIP_CONFFILES "/etc/blip/probes.d/${example}\n")
endforeach()
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/package-control/conffiles "${BLIP_CONFFILES}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME blip)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "blip developers <blip@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "high-frequency synthetic uptime prober")
set(CPACK_PACKAGE_DESCRIPTION
    "blip probes a web stack (HTTP, Postgres, Redis, TCP) several times a second
from one event loop, stores every sample in SQLite and reports the short
outages that coarse monitors miss, the incidents they belong to and the minute
of the hour at which they begin. It serves a Statuspage-compatible feed, a
status page and Prometheus metrics, takes job check-ins and sends alerts.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# procps: the unit's ExecReload is /bin/kill, which minimal installs lack.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, ca-certificates, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_BINARY_DIR}/package-control/conffiles ${BLIP_PACKAGING_DIR}/debian/postinst
    ${BLIP_PACKAGING_DIR}/debian/prerm ${BLIP_PACKAGING_DIR}/debian/postrm)
include(CPack)
