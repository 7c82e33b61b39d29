/* crossl-edge per-op profile (C++), linked only into the Cortex-M4 run image of `crossl-edge
 * firmware --build`; PFX = crossl_<m>, PFXM = CROSSL_<M>. A second MicroInterpreter on the same
 * model array, built with a resolver that hands out copies of the model's registrations whose
 * invoke is timed: each op's Invoke() is bracketed by run_ticks() (SysTick under QEMU -icount:
 * instruction-proportional). TFLite Micro's own profiler hook (ScopedMicroProfiler in
 * MicroInterpreterGraph::InvokeSubgraph) is compiled out by -DTF_LITE_STRIP_ERROR_STRINGS, which
 * the firmware's libraries are built with; this wraps the same kernels in the same libraries.
 * Prints "OP <index> <ticks>" per operator in graph order, then "PROFILE <ops> <ticks>". */
#include <cstdint>
#include <cstring>
#include <new>

#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "PFX_contract.h"
#include "PFX_model.h"
#include "PFX_resolver.h"

extern "C" uint64_t run_ticks(void);
extern "C" void run_put_record(const char *tag, uint64_t a, uint64_t b);
extern "C" int PFX_profile(const int8_t *input);

namespace {
constexpr uint32_t kMaxOps = 256u;
constexpr int kMaxRegistrations = 32;
alignas(16) uint8_t profile_arena[PFXM_ARENA_SIZE];
alignas(PFX_op_resolver_t) uint8_t inner_mem[sizeof(PFX_op_resolver_t)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_mem[sizeof(tflite::MicroInterpreter)];
uint64_t op_ticks[kMaxOps];
TfLiteStatus (*op_invoke[kMaxOps])(TfLiteContext *, TfLiteNode *);
uint32_t op_count, next_op;
TFLMRegistration timed[kMaxRegistrations];
const TFLMRegistration *original[kMaxRegistrations];
int registrations;

/* Ops run one after another in graph order (one subgraph): the k-th call is operator k. */
TfLiteStatus timed_invoke(TfLiteContext *context, TfLiteNode *node)
{
    uint32_t k = next_op++;
    if (k >= op_count) return kTfLiteError;
    uint64_t t0 = run_ticks();
    TfLiteStatus status = op_invoke[k](context, node);
    op_ticks[k] += run_ticks() - t0;
    return status;
}

const TFLMRegistration *wrap(const TFLMRegistration *r)
{
    if (r == nullptr) return nullptr;
    for (int i = 0; i < registrations; i++)
        if (original[i] == r) return &timed[i];
    if (registrations == kMaxRegistrations) return nullptr;
    original[registrations] = r;
    timed[registrations] = *r;
    timed[registrations].invoke = timed_invoke;
    return &timed[registrations++];
}

class TimingResolver : public tflite::MicroOpResolver {
public:
    explicit TimingResolver(const tflite::MicroOpResolver &inner) : inner_(inner) {}
    const TFLMRegistration *FindOp(tflite::BuiltinOperator op) const override
    {
        return wrap(inner_.FindOp(op));
    }
    const TFLMRegistration *FindOp(const char *op) const override
    {
        return wrap(inner_.FindOp(op));
    }
    tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override
    {
        return inner_.GetOpDataParser(op);
    }

private:
    const tflite::MicroOpResolver &inner_;
    /* as TFLite Micro's own classes: no operator delete, so no free()/malloc() linked */
    TF_LITE_REMOVE_VIRTUAL_DELETE
};
alignas(TimingResolver) uint8_t timing_mem[sizeof(TimingResolver)];
} /* namespace */

/* One profiled invoke on ``input``; 0 on success, negative on failure. */
extern "C" int PFX_profile(const int8_t *input)
{
    const tflite::Model *model = tflite::GetModel(PFX_model);
    PFX_op_resolver_t *inner = new (inner_mem) PFX_op_resolver_t();
    if (PFX_register_ops(*inner) != kTfLiteOk) return -3;
    if (model->subgraphs()->size() != 1u) return -7;
    const auto *ops = model->subgraphs()->Get(0)->operators();
    op_count = ops->size();
    if (op_count > kMaxOps) return -7;
    for (uint32_t k = 0; k < op_count; k++) {
        const TFLMRegistration *r = nullptr;
        const tflite::OperatorCode *code = model->operator_codes()->Get(ops->Get(k)->opcode_index());
        if (tflite::GetRegistrationFromOpCode(code, *inner, &r) != kTfLiteOk || r == nullptr ||
            r->invoke == nullptr) return -8;
        op_invoke[k] = r->invoke;
    }
    TimingResolver *resolver = new (timing_mem) TimingResolver(*inner);
    tflite::MicroInterpreter *interpreter = new (interpreter_mem)
        tflite::MicroInterpreter(model, *resolver, profile_arena, sizeof profile_arena);
    if (interpreter->AllocateTensors() != kTfLiteOk) return -4;
    std::memcpy(interpreter->input(0)->data.int8, input, PFXM_INPUT_SIZE);
    std::memset(op_ticks, 0, sizeof op_ticks);
    next_op = 0u;
    uint64_t t0 = run_ticks();
    if (interpreter->Invoke() != kTfLiteOk) return -6;
    uint64_t total = run_ticks() - t0;
    if (next_op != op_count) return -9;
    for (uint32_t k = 0; k < op_count; k++) run_put_record("OP", k, op_ticks[k]);
    run_put_record("PROFILE", op_count, total);
    return 0;
}
