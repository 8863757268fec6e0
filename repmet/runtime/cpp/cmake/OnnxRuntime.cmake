# ONNX Runtime for the C++ runtime's "onnx" format (the graphs that Python's fastest CPU backend
# runs), as the imported target repmet::onnxruntime. -DREPMET_ONNXRUNTIME=AUTO (the default) uses
# it when it is found, ON requires it, OFF builds without it (formats aoti and torchscript only).
#
# Where it comes from:
# - -DONNXRUNTIME_ROOT=<folder of an ONNX Runtime release: include/, lib/libonnxruntime.so>, or
# - the installed onnxruntime wheel (asked of Python): its capi/libonnxruntime.so.<version>, the
#   library Python's backend runs. The wheel ships no headers, and neither PyPI nor Debian has
#   them, so its C and C++ API headers come from the npm registry: ONNX Runtime 1.29's, packaged
#   in com.github.asus4.onnxruntime 0.4.9 (MIT; checked against its sha256; npm keeps it in its
#   cache). Headers of API 29 work with every library from 1.29 on: the runtime asks the library
#   for API 29 when it first loads a graph and refuses an older library with an Error.
set(REPMET_ONNXRUNTIME AUTO CACHE STRING "The onnx format through ONNX Runtime: AUTO, ON or OFF")
set_property(CACHE REPMET_ONNXRUNTIME PROPERTY STRINGS AUTO ON OFF)
set(ONNXRUNTIME_ROOT "" CACHE PATH "An ONNX Runtime release folder (include/, lib/); empty: the onnxruntime wheel")

set(repmet_ort_npm_package "com.github.asus4.onnxruntime@0.4.9")
set(repmet_ort_npm_sha256 "e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d")
set(repmet_ort_npm_headers "package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers")
set(repmet_ort_header_api 29)  # ORT_API_VERSION of those headers

# Without ONNX Runtime: a message (AUTO) or a stop (ON) that says why.
macro(repmet_without_onnxruntime reason)
  if(REPMET_ONNXRUNTIME STREQUAL "ON")
    message(FATAL_ERROR "repmet: -DREPMET_ONNXRUNTIME=ON but ${reason}")
  endif()
  message(STATUS "repmet: without the onnx format: ${reason}")
  return()
endmacro()

# The npm package's headers, once per build folder, into ${destination}.
function(repmet_fetch_ort_headers destination result)
  find_program(repmet_npm npm)
  if(NOT repmet_npm)
    set(${result} "npm is not installed (it fetches ONNX Runtime's headers); install nodejs and npm, or pass -DONNXRUNTIME_ROOT=<an ONNX Runtime release folder>" PARENT_SCOPE)
    return()
  endif()
  set(download "${CMAKE_BINARY_DIR}/onnxruntime/download")
  file(MAKE_DIRECTORY "${download}")
  message(STATUS "repmet: ONNX Runtime's headers from the npm registry (${repmet_ort_npm_package}, 150 MB once)")
  execute_process(COMMAND "${repmet_npm}" pack "${repmet_ort_npm_package}" --silent --pack-destination "${download}"
                  RESULT_VARIABLE failed OUTPUT_VARIABLE tarball ERROR_VARIABLE npm_error OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(failed)
    string(STRIP "${npm_error}" npm_error)
    set(${result} "npm pack ${repmet_ort_npm_package} failed (${npm_error}); pass -DONNXRUNTIME_ROOT=<an ONNX Runtime release folder>" PARENT_SCOPE)
    return()
  endif()
  set(tarball "${download}/${tarball}")
  file(SHA256 "${tarball}" digest)
  if(NOT digest STREQUAL repmet_ort_npm_sha256)
    file(REMOVE_RECURSE "${download}")
    set(${result} "${repmet_ort_npm_package} from npm is not the file this build was checked with (sha256 ${digest})" PARENT_SCOPE)
    return()
  endif()
  file(ARCHIVE_EXTRACT INPUT "${tarball}" DESTINATION "${download}" PATTERNS "${repmet_ort_npm_headers}/*")
  file(GLOB headers "${download}/${repmet_ort_npm_headers}/*.h")
  file(MAKE_DIRECTORY "${destination}")
  file(COPY ${headers} DESTINATION "${destination}")
  file(REMOVE_RECURSE "${download}")
  set(${result} "" PARENT_SCOPE)
endfunction()

if(REPMET_ONNXRUNTIME STREQUAL "OFF")
  message(STATUS "repmet: without the onnx format (-DREPMET_ONNXRUNTIME=OFF)")
  return()
endif()

if(ONNXRUNTIME_ROOT)
  set(repmet_ort_include "${ONNXRUNTIME_ROOT}/include")
  find_library(repmet_ort_library onnxruntime PATHS "${ONNXRUNTIME_ROOT}/lib" NO_DEFAULT_PATH)
  if(NOT repmet_ort_library OR NOT EXISTS "${repmet_ort_include}/onnxruntime_cxx_api.h")
    repmet_without_onnxruntime("${ONNXRUNTIME_ROOT} holds no include/onnxruntime_cxx_api.h and lib/libonnxruntime.so")
  endif()
  get_filename_component(repmet_ort_library_dir "${repmet_ort_library}" DIRECTORY)
else()
  find_package(Python COMPONENTS Interpreter REQUIRED)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import glob, os, onnxruntime as o; print(o.__version__); print(sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), 'capi', 'libonnxruntime.so.*')))[0])"
    OUTPUT_VARIABLE wheel RESULT_VARIABLE failed ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(failed)
    repmet_without_onnxruntime("Python (${Python_EXECUTABLE}) has no onnxruntime wheel with its library (pip install onnxruntime)")
  endif()
  string(REPLACE "\n" ";" wheel "${wheel}")
  list(GET wheel 0 repmet_ort_version)
  list(GET wheel 1 repmet_ort_wheel_library)
  if(repmet_ort_version VERSION_LESS "1.${repmet_ort_header_api}")
    repmet_without_onnxruntime("the onnxruntime wheel is ${repmet_ort_version}, older than the headers' 1.${repmet_ort_header_api} (pip install -U onnxruntime)")
  endif()
  # the library's SONAME is libonnxruntime.so.1 and the wheel names it libonnxruntime.so.<version>:
  # links beside the build let the linker and the loader find it where it lies
  set(repmet_ort_library_dir "${CMAKE_BINARY_DIR}/onnxruntime/lib")
  file(MAKE_DIRECTORY "${repmet_ort_library_dir}")
  file(CREATE_LINK "${repmet_ort_wheel_library}" "${repmet_ort_library_dir}/libonnxruntime.so.1" SYMBOLIC)
  file(CREATE_LINK "${repmet_ort_wheel_library}" "${repmet_ort_library_dir}/libonnxruntime.so" SYMBOLIC)
  set(repmet_ort_library "${repmet_ort_library_dir}/libonnxruntime.so")
  set(repmet_ort_include "${CMAKE_BINARY_DIR}/onnxruntime/include")
  if(NOT EXISTS "${repmet_ort_include}/onnxruntime_cxx_api.h")
    repmet_fetch_ort_headers("${repmet_ort_include}" reason)
    if(reason)
      repmet_without_onnxruntime("${reason}")
    endif()
  endif()
endif()

add_library(repmet::onnxruntime INTERFACE IMPORTED)
set_target_properties(repmet::onnxruntime PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${repmet_ort_include}"
  INTERFACE_LINK_LIBRARIES "${repmet_ort_library}"
  INTERFACE_COMPILE_DEFINITIONS "REPMET_WITH_ONNXRUNTIME=1;ORT_API_MANUAL_INIT=1")
list(APPEND CMAKE_BUILD_RPATH "${repmet_ort_library_dir}")
list(APPEND CMAKE_INSTALL_RPATH "${repmet_ort_library_dir}")
message(STATUS "repmet: the onnx format through ONNX Runtime (${repmet_ort_library}, headers ${repmet_ort_include})")
