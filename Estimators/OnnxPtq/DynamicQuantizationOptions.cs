namespace MLNetQuant.OnnxPtq;

/// <summary>Dynamic quantization of an existing float ONNX model — what ONNX Runtime's <c>quantize_dynamic</c> does for
/// transformers: int8 weights (symmetric, per output column by default) written once, activations quantized to uint8
/// at run time from each batch's own range, so no calibration data is needed and no activation range can be wrong.
/// Each quantized MatMul/Gemm becomes DynamicQuantizeLinear → MatMulInteger → scale, which ONNX Runtime fuses into one
/// integer kernel (DynamicQuantizeMatMul); embedding tables (Gather) are stored as int8 with a scale per row.</summary>
public sealed class DynamicQuantizationOptions : OnnxModelOptions
{
    private static readonly string[] Supported = { "MatMul", "Gemm", "Gather", "Attention" };

    /// <summary>ONNX op types to quantize: MatMul and Gemm with a constant 2-D weight (the projections and feed-forward
    /// layers of a transformer, a classifier's head), Gather from a constant 2-D table along axis 0 (token and
    /// position embeddings; int8 rows, dequantized after the lookup), and ONNX Runtime's fused com.microsoft Attention
    /// (in models its transformer optimizer wrote), which becomes QAttention with int8 packed Q/K/V weights — left float
    /// when it uses an attribute or input QAttention does not take. Remove "Gather" to keep embeddings float.</summary>
    public override IList<string> OpTypes { get; set; } = new List<string> { "MatMul", "Gemm", "Gather", "Attention" };

    /// <summary>7-bit weights ([−63, 63]) instead of 8-bit: for x86 CPUs without AVX-VNNI, whose uint8×int8 kernels sum
    /// pairs of products in 16 bits and can saturate on full-range weights (ONNX Runtime's <c>reduce_range</c>). Costs
    /// accuracy; leave off on VNNI machines (AVX512-VNNI, AVX-VNNI) and on ARM.</summary>
    public bool ReduceRange { get; set; }

    /// <summary>Write each Hugging Face BERT-style self-attention block (Q, K, V projections on one input, head split,
    /// scaled scores, 0/1 attention mask, Softmax, context) whose projections are quantized as ONNX Runtime's CPU
    /// QAttention kernel (com.microsoft): one integer GEMM for the three projections on the run-time-quantized input, and
    /// ORT's attention kernel — what ORT's own transformer optimizer followed by <c>quantize_dynamic</c> produces. Off by
    /// default: a dynamic model then holds standard ONNX ops only (any execution provider); on CUDA this node falls back
    /// to the CPU.</summary>
    public bool CpuAttentionKernels { get; set; }

    private protected override IReadOnlyCollection<string> SupportedOpTypes => Supported;
}
