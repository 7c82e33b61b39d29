"""`crossl.mk`: the generated Makefile fragment that builds TFLite Micro (only the bundle's kernels)
and each modality's glue, model and node loop for the host or a Cortex-M4F; the toolkit's
`--build` runs exactly this file.
"""

from __future__ import annotations

from crossl_edge.firmware_bridge import tflm_sources as ts

LIB_CORE = "libtflm_core.a"
LIB_KERNELS = "libtflm_kernels.a"
GLUE_WARNINGS = ("-Wall", "-Wextra", "-Werror")


def object_name(rel: str) -> str:
    """A unique, flat object name for a TFLM source path (several files share a basename)."""
    stem = rel.rsplit(".", 1)[0]
    for prefix in ("tensorflow/lite/", "tensorflow/"):
        if stem.startswith(prefix):
            stem = stem[len(prefix):]
            break
    return stem.replace("/", "_") + ".o"


def _words(items: list[str] | tuple[str, ...], indent: str = "    ") -> str:
    return " \\\n".join(f"{indent}{w}" for w in items) if items else ""


def _rules(obj_dir: str, srcs: list[str], compiler: str) -> str:
    out = []
    for rel in srcs:
        out.append(f"{obj_dir}/{object_name(rel)}: $(TFLM_ROOT)/{rel}\n"
                   f"\t@mkdir -p $(@D)\n\t{compiler} -c $< -o $@\n")
    return "\n".join(out)


def _toolchains() -> str:
    parts = []
    for i, (target, tc) in enumerate(ts.TOOLCHAINS.items()):
        prefix = tc.cc[: -len("gcc")]
        parts.append(f"{'if' if i == 0 else 'else if'}eq ($(CROSSL_TARGET),{target})\n"
                     f"CROSSL_CC ?= {tc.cc}\nCROSSL_CXX ?= {tc.cxx}\nCROSSL_AR ?= {prefix}ar\n"
                     f"CROSSL_ARCH := {' '.join(tc.arch)}\nCROSSL_OPT := {tc.opt}")
    names = " or ".join(ts.TOOLCHAINS)
    return "\n".join(parts) + f"\nelse\n$(error CROSSL_TARGET must be {names})\nendif"


def _sealed_rules() -> str:
    return """# --- sealed frames (firmware --key-file): Monocypher and the network key ---
MONOCYPHER_SRC ?= $(error set MONOCYPHER_SRC to Monocypher 4.0.3's src/ folder)
CROSSL_SEAL_OBJS := $(CROSSL_BUILD)/common/monocypher.o $(CROSSL_BUILD)/common/crossl_network_key.o
$(CROSSL_BUILD)/common/monocypher.o: $(MONOCYPHER_SRC)/monocypher.c
\t@mkdir -p $(@D)
\t$(CROSSL_CC) $(CROSSL_CFLAGS) -I$(MONOCYPHER_SRC) -c $< -o $@
$(CROSSL_BUILD)/common/crossl_network_key.o: $(CROSSL_DIR)/common/crossl_network_key.c
\t@mkdir -p $(@D)
\t$(CROSSL_CC) $(CROSSL_CFLAGS) $(CROSSL_WARN) -I$(CROSSL_DIR)/common -c $< -o $@
"""


def makefile(names: list[str], ops: list[str], *, banner: str, sealed: bool = False) -> str:
    """The fragment for modalities ``names`` whose models use ``ops`` (union, sorted); with
    ``sealed`` each node also links Monocypher (MONOCYPHER_SRC) and the network key."""
    core = list(ts.CORE_SOURCES)
    ref, cmsis = ts.kernel_sources(ops, "reference"), ts.kernel_sources(ops, "cmsis_nn")
    cmsis_dirs = ts.cmsis_folders(ops, "cmsis_nn")
    dl = ts.DOWNLOADS
    inc = " ".join(f"-isystem $(TFLM_ROOT)/{d}".replace("/.", "") for d in ts.include_dirs())
    cinc = " ".join(f"-isystem $(TFLM_ROOT)/{d}" for d in ts.cmsis_include_dirs())
    apps = []
    for n in names:
        p, d = f"crossl_{n}", f"$(CROSSL_DIR)/{n}"
        objs = [f"$(CROSSL_BUILD)/{n}/{s}.o" for s in (f"{p}_tflm", f"{p}_model", "node_example")]
        glue_inc = f"-I{d} -I$(CROSSL_DIR)/common" + (" -I$(MONOCYPHER_SRC)" if sealed else "")
        if sealed:
            objs.append("$(CROSSL_SEAL_OBJS)")
        apps.append(f"""# --- modality {n}: glue (C++), model array and node loop (C99) ---
CROSSL_{n}_OBJS := {' '.join(objs)}
$(CROSSL_BUILD)/{n}/{p}_tflm.o: {d}/{p}_tflm.cc {d}/{p}_resolver.h {d}/{p}_contract.h
\t@mkdir -p $(@D)
\t$(CROSSL_CXX) $(CROSSL_CXXFLAGS) $(CROSSL_WARN) $(CROSSL_TFLM_INCLUDES) {glue_inc} -c $< -o $@
$(CROSSL_BUILD)/{n}/{p}_model.o: {d}/{p}_model.c {d}/{p}_model.h
\t@mkdir -p $(@D)
\t$(CROSSL_CC) $(CROSSL_CFLAGS) $(CROSSL_WARN) {glue_inc} -c $< -o $@
$(CROSSL_BUILD)/{n}/node_example.o: {d}/node_example.c {d}/{p}_node.h {d}/{p}_contract.h
\t@mkdir -p $(@D)
\t$(CROSSL_CC) $(CROSSL_CFLAGS) $(CROSSL_WARN) {glue_inc} -c $< -o $@
crossl-{n}: $(CROSSL_{n}_OBJS) crossl-tflm
.PHONY: crossl-{n}
""")
    fl = ts.flags("host", "reference")
    common = [f for f in fl["cxx"] if f in ts.COMMON or f in ts.DEFINES]
    return f"""{banner}
#
# Builds TensorFlow Lite Micro with only the kernels these models use, and per modality the glue,
# model array and node loop. Variables (make VAR=value):
#   TFLM_ROOT          TFLite Micro source tree (required; scripts/fetch-tflm.sh fetches it)
#   CROSSL_TARGET      {' | '.join(ts.TOOLCHAINS)} (default cortex-m4: Cortex-M4F, hard float)
#   CROSSL_KERNELS     {' | '.join(ts.KERNEL_SETS)} (default cmsis_nn)
#   CROSSL_BUILD       output folder (default build/$(CROSSL_TARGET)-$(CROSSL_KERNELS))
#   CROSSL_TFLM_BUILD  folder of {LIB_CORE} and {LIB_KERNELS} (default $(CROSSL_BUILD)/tflm)
# Targets: crossl-tflm (the two libraries), crossl-<modality> (its objects + the libraries).
# Link your startup code and main with $(CROSSL_<modality>_OBJS) $(CROSSL_LDLIBS), e.g.
#   $(CROSSL_CXX) $(CROSSL_ARCH) main.o $(CROSSL_acc_OBJS) $(CROSSL_LDLIBS) -o node.elf
# (add --specs=nano.specs and your linker script on a Cortex-M). No heap, no exceptions, no RTTI;
# the glue needs no __dso_handle, so -nostartfiles links.

CROSSL_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
TFLM_ROOT ?= $(error set TFLM_ROOT to a TFLite Micro source tree (scripts/fetch-tflm.sh))
CROSSL_TARGET ?= cortex-m4
CROSSL_KERNELS ?= cmsis_nn
CROSSL_BUILD ?= build/$(CROSSL_TARGET)-$(CROSSL_KERNELS)
CROSSL_TFLM_BUILD ?= $(CROSSL_BUILD)/tflm

{_toolchains()}
ifneq ($(filter-out {' '.join(ts.KERNEL_SETS)},$(CROSSL_KERNELS)),)
$(error CROSSL_KERNELS must be {' or '.join(ts.KERNEL_SETS)})
endif

# TFLM needs C++17, and TF_LITE_STATIC_MEMORY on everything that includes its headers.
CROSSL_DEFINES := {' '.join(common)}
ifeq ($(CROSSL_KERNELS),cmsis_nn)
CROSSL_DEFINES += {' '.join(ts.CMSIS_DEFINES)}
endif
CROSSL_CFLAGS := $(CROSSL_ARCH) $(CROSSL_OPT) $(CROSSL_DEFINES) {' '.join(ts.C_ONLY)}
CROSSL_CXXFLAGS := $(CROSSL_ARCH) $(CROSSL_OPT) $(CROSSL_DEFINES) {' '.join(ts.CXX_ONLY)}
CROSSL_WARN := {' '.join(GLUE_WARNINGS)}
CROSSL_TFLM_INCLUDES := {inc}
CROSSL_CMSIS_INCLUDES := {cinc}
CROSSL_LDLIBS := -Wl,--start-group $(CROSSL_TFLM_BUILD)/{LIB_KERNELS} \\
    $(CROSSL_TFLM_BUILD)/{LIB_CORE} -Wl,--end-group

# The TFLM framework (interpreter, allocator, planner, flatbuffer parsing, kernel helpers).
CROSSL_CORE_SRCS := \\
{_words(core)}
# Kernels for the ops {', '.join(ops)}.
CROSSL_KERNEL_SRCS_reference := \\
{_words(ref)}
CROSSL_KERNEL_SRCS_cmsis_nn := \\
{_words(cmsis)}
CROSSL_CMSIS_NN := $(TFLM_ROOT)/{dl}/cmsis_nn
CROSSL_CMSIS_DIRS_cmsis_nn := {' '.join(cmsis_dirs)}
# (int8 only: CMSIS-NN's float16/float32 files left out, as TFLM's own Makefile does)
CROSSL_CMSIS_SRCS := $(filter-out {' '.join(ts.CMSIS_EXCLUDE)},\\
    $(foreach d,$(CROSSL_CMSIS_DIRS_$(CROSSL_KERNELS)),\\
    $(sort $(wildcard $(CROSSL_CMSIS_NN)/Source/$(d)/*.c))))

crossl_obj = $(foreach s,$(1),$(CROSSL_TFLM_BUILD)/obj/$(subst /,_,$(basename \\
    $(patsubst tensorflow/%,%,$(patsubst tensorflow/lite/%,%,$(s))))).o)
CROSSL_CORE_OBJS := $(call crossl_obj,$(CROSSL_CORE_SRCS))
CROSSL_KERNEL_OBJS := $(call crossl_obj,$(CROSSL_KERNEL_SRCS_$(CROSSL_KERNELS))) \\
    $(patsubst $(CROSSL_CMSIS_NN)/Source/%.c,$(CROSSL_TFLM_BUILD)/cmsis_nn/%.o,$(CROSSL_CMSIS_SRCS))
crossl_tflm_cxx = $(CROSSL_CXX) $(CROSSL_CXXFLAGS) $(CROSSL_TFLM_INCLUDES) $(CROSSL_CMSIS_INCLUDES)

crossl-tflm: $(CROSSL_TFLM_BUILD)/{LIB_CORE} $(CROSSL_TFLM_BUILD)/{LIB_KERNELS}
.PHONY: crossl-tflm
$(CROSSL_TFLM_BUILD)/{LIB_CORE}: $(CROSSL_CORE_OBJS)
\trm -f $@ && $(CROSSL_AR) rcs $@ $^
$(CROSSL_TFLM_BUILD)/{LIB_KERNELS}: $(CROSSL_KERNEL_OBJS)
\trm -f $@ && $(CROSSL_AR) rcs $@ $^
$(CROSSL_TFLM_BUILD)/cmsis_nn/%.o: $(CROSSL_CMSIS_NN)/Source/%.c
\t@mkdir -p $(@D)
\t$(CROSSL_CC) $(CROSSL_CFLAGS) $(CROSSL_CMSIS_INCLUDES) -c $< -o $@

{_rules("$(CROSSL_TFLM_BUILD)/obj", sorted({*core, *ref, *cmsis}), "$(crossl_tflm_cxx)")}
{_sealed_rules() if sealed else ""}{"".join(apps)}"""
