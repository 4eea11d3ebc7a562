using MLNetQuant.Training;

namespace MLNetQuant.OnnxPtq;

/// <summary>Static post-training quantization of an existing float ONNX model, calibrated in ONNX Runtime over an
/// IDataView (no TorchSharp involved): Observer (weights and activations) or Naive (weights only).</summary>
public sealed class OnnxQuantizationOptions : OnnxModelOptions
{
    private static readonly string[] Supported = { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool", "Gather" };

    /// <summary>How activation ranges are chosen (Observer only).</summary>
    public CalibrationMethod Calibration { get; set; } = CalibrationMethod.Histogram;

    /// <summary>For <see cref="CalibrationMethod.Percentile"/>: the central mass kept, in percent.</summary>
    public double Percentile { get; set; } = 99.99;

    /// <summary>Rows read for calibration (the first ones); 0 reads all. Memory does not grow with it: observers
    /// stream.</summary>
    public int CalibrationRows { get; set; } = 1_000;

    /// <summary>Rows (the first ones) on which each quantized node's output is compared with the float model's for the
    /// per-layer error report (<see cref="QuantizationReport.LayerErrors"/>); 0 skips it.</summary>
    public int ErrorReportRows { get; set; } = 32;

    /// <summary>Rows per ONNX Runtime calibration batch.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>ONNX op types to quantize: Conv, ConvTranspose, Gemm and MatMul (constant weight and data input); Add (both inputs;
    /// residual sums, which ONNX Runtime then runs as QLinearAdd); optionally Mul, Concat, AveragePool and
    /// GlobalAveragePool (their data inputs; ORT fuses them into QLinear* kernels when a QuantizeLinear follows); Gather
    /// from a constant 2-D table along axis 0 (embeddings: int8 rows with a scale each, dequantized after the lookup).</summary>
    public override IList<string> OpTypes { get; set; } = new List<string> { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add" };

    /// <summary>Activations: int8 symmetric (true) or uint8 affine (false; ORT's fastest on x86).</summary>
    public bool SymmetricActivations { get; set; }

    /// <summary>SmoothQuant's migration strength α in (0, 1], or null (the default) for none. Each activation read by a
    /// quantized MatMul/Gemm weight is divided per input channel by s = max|X|^α / max|W|^(1−α) (from the calibration
    /// rows) and the weight's rows multiplied by s: the product is unchanged, but the activation's outlier channels —
    /// which in transformers stretch a per-tensor 8-bit grid over a few channels — move into the weights, which have
    /// a scale per output channel. 0.5 suits most encoders; larger α moves more.</summary>
    public double? SmoothQuantAlpha { get; set; }

    /// <summary>Write each quantized MatMul (constant weight) as ONNX Runtime's CPU integer kernel MatMulIntegerToFloat
    /// (com.microsoft) with the following bias Add and any SmoothQuant factors folded in, instead of the portable QDQ
    /// form. ORT's own QDQ fusion reaches the same kernel but leaves a float Add per projection (and SmoothQuant's Mul)
    /// outside it. CPU only: on CUDA and other execution providers these nodes fall back to the CPU — leave false (the
    /// default) for GPU deployment.</summary>
    public bool CpuMatMulKernels { get; set; }

    /// <summary>Static int8 for transformer encoders (BERT, MiniLM …): MatMul and Gemm, and int8 embedding tables
    /// (Gather) — LayerNormalization, Softmax, GELU and the residual additions stay float, as a published NER case shows
    /// they must (F1 0.94 → 0.10 with the whole graph quantized, 0.91 with them float) — histogram calibration over 128
    /// rows in batches of 8, and <see cref="CpuMatMulKernels"/> (set it false for GPU deployment).</summary>
    /// <param name="modelPath">The float ONNX model.</param>
    /// <param name="smoothQuantAlpha">SmoothQuant's α, or null (the default) for none. Measured on all-MiniLM-L6-v2
    /// (BENCHMARKS.md): α 0.5 costs about a tenth of the speed (a Mul per smoothed activation: a BERT's LayerNorm outputs
    /// also feed its residual additions, so the factors cannot be folded into them) for no gain in mean embedding cosine;
    /// models with strong activation outliers (larger BERTs and decoder LLMs) are what it is for.</param>
    public static OnnxQuantizationOptions ForTransformers(string modelPath, double? smoothQuantAlpha = null) => new()
    {
        ModelPath = modelPath,
        OpTypes = new List<string> { "MatMul", "Gemm", "Gather" },
        SmoothQuantAlpha = smoothQuantAlpha,
        CpuMatMulKernels = true,
        CalibrationRows = 128,
        BatchSize = 8,
    };

    private protected override IReadOnlyCollection<string> SupportedOpTypes => Supported;

    internal override void Validate()
    {
        base.Validate();
        if (!Enum.IsDefined(Calibration)) throw new ArgumentOutOfRangeException(nameof(Calibration), Calibration, "Unknown calibration method.");
        if (!(Percentile > 0 && Percentile <= 100)) throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, "Percentile must be in (0, 100].");
        if (CalibrationRows < 0) throw new ArgumentOutOfRangeException(nameof(CalibrationRows), CalibrationRows, "CalibrationRows must be >= 0.");
        if (ErrorReportRows < 0) throw new ArgumentOutOfRangeException(nameof(ErrorReportRows), ErrorReportRows, "ErrorReportRows must be >= 0.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (SmoothQuantAlpha is double alpha && !(alpha > 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(SmoothQuantAlpha), alpha, "SmoothQuantAlpha must be in (0, 1], or null for none.");
    }
}
