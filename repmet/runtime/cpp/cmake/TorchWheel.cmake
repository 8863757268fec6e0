# libtorch from the installed torch wheel, as the imported target repmet::torch.
#
# The wheel's own TorchConfig.cmake insists on a CUDA toolkit when the wheel is a CUDA build,
# even for a CPU-only program; so the headers and libraries are used directly. The torch
# folder is asked of Python (-DPython_EXECUTABLE=... to choose one) or given as -DTORCH_ROOT=.
# -DREPMET_CUDA=ON also links libtorch_cuda (its CUDA libraries come with the wheel's nvidia-*
# packages), so that models run on GPUs.
option(REPMET_CUDA "Link libtorch_cuda so that models can run on CUDA devices" OFF)

if(NOT TORCH_ROOT)
  find_package(Python COMPONENTS Interpreter REQUIRED)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c "import os, torch; print(os.path.dirname(torch.__file__))"
    OUTPUT_VARIABLE TORCH_ROOT OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE found)
  if(NOT found EQUAL 0)
    message(FATAL_ERROR "Python (${Python_EXECUTABLE}) cannot import torch: pip install the project first "
                        "(pip install -e .), or pass -DTORCH_ROOT=<the torch package folder>")
  endif()
endif()
set(TORCH_ROOT "${TORCH_ROOT}" CACHE PATH "The torch package folder (holds include/ and lib/)")
if(NOT EXISTS "${TORCH_ROOT}/include/torch/script.h")
  message(FATAL_ERROR "${TORCH_ROOT} has no include/torch/script.h: it is not a torch wheel's folder")
endif()

set(torch_libraries torch torch_cpu c10)
if(REPMET_CUDA)
  list(APPEND torch_libraries torch_cuda c10_cuda)
endif()
add_library(repmet::torch INTERFACE IMPORTED)
set_target_properties(repmet::torch PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${TORCH_ROOT}/include;${TORCH_ROOT}/include/torch/csrc/api/include")
foreach(name IN LISTS torch_libraries)
  find_library(torch_${name}_library ${name} PATHS "${TORCH_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  # --no-as-needed: libtorch_cuda registers the CUDA kernels when loaded; nothing calls it by name
  target_link_libraries(repmet::torch INTERFACE "-Wl,--no-as-needed" "${torch_${name}_library}" "-Wl,--as-needed")
endforeach()
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
  OUTPUT_VARIABLE cxx11_abi OUTPUT_STRIP_TRAILING_WHITESPACE)
if(cxx11_abi STREQUAL "")
  set(cxx11_abi 1)  # every wheel since torch 2.7
endif()
target_compile_definitions(repmet::torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${cxx11_abi})
# the wheel's libraries are found at run time where they lie, without LD_LIBRARY_PATH
set(CMAKE_BUILD_RPATH "${TORCH_ROOT}/lib")
set(CMAKE_INSTALL_RPATH "${TORCH_ROOT}/lib")
message(STATUS "repmet: libtorch from ${TORCH_ROOT} (${torch_libraries})")
