namespace MLNetQuant.OnnxPtq;

/// <summary>Weight-only int4 quantization of an existing float ONNX model, for size first: the weights of MatMul/Gemm
/// and the embedding tables (Gather) become 4-bit codes in blocks along the reduction axis, each block with its own
/// scale (and zero-point), run by ONNX Runtime's MatMulNBits and GatherBlockQuantized kernels (com.microsoft contrib
/// ops, CPU and CUDA). Activations stay float. <see cref="Int4Rounding.RoundToNearest"/> (the default) reads no data;
/// <see cref="Int4Rounding.Gptq"/> runs the float model over the first <see cref="CalibrationRows"/> rows given to Fit
/// and quantizes each MatMul's weights so its output, rather than its weights, stays close to float.</summary>
public sealed class Int4QuantizationOptions : OnnxModelOptions
{
    private static readonly string[] Supported = { "MatMul", "Gemm", "Gather" };

    /// <summary>ONNX op types to quantize: MatMul and Gemm with a constant 2-D weight, and Gather from a constant 2-D
    /// table (even width) along axis 0 — the token embeddings that are half of a small transformer's bytes. Remove
    /// "Gather" to keep embeddings float.</summary>
    public override IList<string> OpTypes { get; set; } = new List<string> { "MatMul", "Gemm", "Gather" };

    /// <summary>Values along the reduction axis (K of a MatMul, the width of a table row) that share one scale: a power
    /// of two, at least 16 (the kernels' rule). Smaller blocks follow the weights more closely and cost more scales:
    /// 32 (the default) adds 1 bit per weight, 128 (ONNX Runtime's default) a quarter bit.</summary>
    public int BlockSize { get; set; } = 32;

    /// <summary>Symmetric blocks (zero-point 8, no zero-points stored) instead of affine ones (a 4-bit zero-point per
    /// block fitted to the block's minimum and maximum; the default, as ONNX Runtime's quantizer).</summary>
    public bool Symmetric { get; set; }

    /// <summary>MatMulNBits' <c>accuracy_level</c>: the precision the CPU kernel computes in. 0 (unset) and 1: float32;
    /// 4: the activations are quantized to int8 per block at run time and multiplied with integer instructions
    /// (fastest on x86 with AVX-VNNI and on ARM; slightly less exact). 2 (fp16) and 3 (bf16) fall back to float32 on
    /// CPUs without those types.</summary>
    public int AccuracyLevel { get; set; } = 4;

    /// <summary>How MatMul/Gemm weights are rounded: to nearest on each block's fitted grid (no data), or by GPTQ over
    /// calibration rows. Embedding tables are always rounded to nearest (a lookup has no input to calibrate).</summary>
    public Int4Rounding Rounding { get; set; } = Int4Rounding.RoundToNearest;

    /// <summary>GPTQ: rows of the data given to Fit that are run through the float model to measure each MatMul input's
    /// second moments (0: all rows). A few hundred sentences or images are plenty.</summary>
    public int CalibrationRows { get; set; } = 128;

    /// <summary>GPTQ: rows per ONNX Runtime call while calibrating.</summary>
    public int BatchSize { get; set; } = 8;

    private protected override IReadOnlyCollection<string> SupportedOpTypes => Supported;

    internal override void Validate()
    {
        base.Validate();
        if (BlockSize < 16 || (BlockSize & (BlockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "BlockSize must be a power of two, at least 16 (MatMulNBits' rule).");
        if (AccuracyLevel is < 0 or > 4)
            throw new ArgumentOutOfRangeException(nameof(AccuracyLevel), AccuracyLevel, "AccuracyLevel is 0 (unset), 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8).");
        if (!Enum.IsDefined(Rounding)) throw new ArgumentOutOfRangeException(nameof(Rounding), Rounding, "Rounding must be RoundToNearest or Gptq.");
        if (CalibrationRows < 0) throw new ArgumentOutOfRangeException(nameof(CalibrationRows), CalibrationRows, "CalibrationRows must be >= 0.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (!PerChannelWeights)
            throw new ArgumentException("Int4 weights are always quantized in blocks (BlockSize); PerChannelWeights = false does not apply.", nameof(PerChannelWeights));
    }
}
