# The build's identity for --version and the backstop_build_info metric, fixed
# at configure time: the project's VERSION, and when the source is a git
# checkout, its commit and `git describe`. A tarball without .git builds the
# same way with the version alone. CMake configures again when HEAD moves, so
# that a commit in a build tree does not leave a stale commit behind.
# A build without .git that knows its commit (the image: .git is kept out of the
# build context) passes it: -DBACKSTOP_BUILD_COMMIT=<hash> and optionally
# -DBACKSTOP_BUILD_DESCRIBE=<git describe>; these win over git when given.
set(BACKSTOP_BUILD_COMMIT "" CACHE STRING "commit for --version when the source has no .git (empty: ask git)")
set(BACKSTOP_BUILD_DESCRIBE "" CACHE STRING "git describe for --version with BACKSTOP_BUILD_COMMIT")
set(BACKSTOP_GIT_COMMIT "")
set(BACKSTOP_GIT_DESCRIBE "")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${PROJECT_SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --short=12 HEAD
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}" OUTPUT_VARIABLE BACKSTOP_GIT_COMMIT
    RESULT_VARIABLE commit_result OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(commit_result EQUAL 0)
    execute_process(COMMAND "${GIT_EXECUTABLE}" describe --tags --always --dirty --abbrev=12
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}" OUTPUT_VARIABLE BACKSTOP_GIT_DESCRIBE
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    foreach(what HEAD logs/HEAD)
      execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path ${what}
        WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}" OUTPUT_VARIABLE path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(path AND NOT IS_ABSOLUTE "${path}")
        set(path "${PROJECT_SOURCE_DIR}/${path}")
      endif()
      if(path AND EXISTS "${path}")
        set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${path}")
      endif()
    endforeach()
  else()
    set(BACKSTOP_GIT_COMMIT "")
  endif()
endif()
if(BACKSTOP_BUILD_COMMIT)
  string(SUBSTRING "${BACKSTOP_BUILD_COMMIT}" 0 12 BACKSTOP_GIT_COMMIT)
  set(BACKSTOP_GIT_DESCRIBE "${BACKSTOP_BUILD_DESCRIBE}")
endif()
if(BACKSTOP_GIT_COMMIT)
  message(STATUS "Backstop ${PROJECT_VERSION}, commit ${BACKSTOP_GIT_COMMIT} (${BACKSTOP_GIT_DESCRIBE})")
else()
  message(STATUS "Backstop ${PROJECT_VERSION} (no git checkout: no commit in --version)")
endif()
