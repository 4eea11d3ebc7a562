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
    /// GlobalAveragePool (their data inputs, and their outputs: ORT fuses them into QLinear* kernels when a QuantizeLinear
    /// follows). A pooling output that is the model's own output — a feature extractor's pooled embedding — is then
    /// requantized on its own calibrated grid too, so ORT pools in int8 on the channels-last layout instead of
    /// transposing the last maps back for a float pool; it is opt-in because the model's output then carries one 8-bit
    /// rounding (by default no model output is ever quantized: a classifier ending in pooling keeps exact logits).
    /// Gather from a constant 2-D table along axis 0 (embeddings: int8 rows with a scale each, dequantized after the
    /// lookup).</summary>
    public override IList<string> OpTypes { get; set; } = new List<string> { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add" };

    /// <summary>Activations: int8 symmetric (true) or uint8 affine (false; ORT's fastest on x86).</summary>
    public bool SymmetricActivations { get; set; }

    /// <summary>SmoothQuant's migration strength α in (0, 1], or null (the default) for none. Each activation that a
    /// normalization writes (LayerNorm, RMSNorm or the exporters' LayerNorm decomposition — a transformer's Q/K/V and
    /// first feed-forward inputs, the paper's scope) or that is a graph input, and that quantized MatMul/Gemm weights
    /// read, is divided per input channel by s = max|X|^α / max|W|^(1−α) (from the calibration rows) and the weights'
    /// rows multiplied by s: the product is unchanged, but the activation's outlier channels — which in transformers
    /// stretch a per-tensor 8-bit grid over a few channels — move into the weights, which have a scale per output
    /// channel. 0.5 suits most encoders; larger α moves more. Naive reads no data and does not apply it (it logs so).</summary>
    public double? SmoothQuantAlpha { get; set; }

    /// <summary>Write each quantized MatMul (constant weight) as ONNX Runtime's CPU integer kernel MatMulIntegerToFloat
    /// (com.microsoft) with the following bias Add and any SmoothQuant factors folded in, instead of the portable QDQ
    /// form. ORT's own QDQ fusion reaches the same kernel but leaves a float Add per projection (and SmoothQuant's Mul)
    /// outside it. A Hugging Face BERT-style self-attention block (Q, K, V projections, head split, scaled scores, 0/1
    /// attention mask, Softmax, context) whose projections are quantized becomes ORT's CPU QAttention kernel — the same
    /// integer projections and float attention, one node (1.81× → 2.22× ORT float on all-MiniLM-L6-v2, side by side).
    /// CPU only: on CUDA and other execution providers these nodes fall back to the CPU — leave false (the default) for
    /// GPU deployment.</summary>
    public bool CpuMatMulKernels { get; set; }

    /// <summary>Weight bit width, 2–8 (default 8): symmetric signed grids; the report records the width. 5–8 bits are
    /// stored as int8, which ONNX Runtime's integer kernels take; 2–4 bits are stored packed, two codes per byte, and
    /// unpacked by standard ops ONNX Runtime folds into a float weight at load: half the weight bytes, but the node then
    /// runs as a float kernel. Below 8 bits, consider <see cref="AdaRound"/> and <see cref="CrossLayerEqualization"/>.</summary>
    public int WeightBits { get; set; } = 8;

    /// <summary>Cross-layer equalization before calibration (Nagel et al. 2019; docs/onnx-ptq.md): pairs of
    /// Conv/Gemm/MatMul layers joined by ReLU, LeakyReLU, ReLU6 or pooling get per-channel factors that equalize their
    /// weight ranges, exact in float — what makes per-tensor weights (<see cref="OnnxModelOptions.PerChannelWeights"/>
    /// false) work on depthwise-separable nets. ReLU6 between two equalized layers becomes ReLU, as in AIMET.</summary>
    public bool CrossLayerEqualization { get; set; }

    /// <summary>Bias correction: after the weights are rounded, each quantized Conv/ConvTranspose/Gemm's bias is reduced by
    /// the mean output shift its weight error causes, E[(Ŵ − W)·x], measured on the calibration rows' float inputs (a
    /// bias is added where the node has none).</summary>
    public bool BiasCorrection { get; set; }

    /// <summary>Learned rounding of the weights (AdaRound) instead of rounding to nearest; null (the default) for none.</summary>
    public AdaRoundOptions? AdaRound { get; set; }

    /// <summary>Mixed precision for a size budget: the quantized weights' bytes as a share of the float weights' bytes,
    /// from 0.125 (int4 everywhere) to 0.25 (int8 everywhere); null (the default) for none. Fit measures each weighted
    /// layer's sensitivity to 4-bit weights (the model's output error with that layer alone at 4 bits, on
    /// <see cref="SensitivityRows"/> rows of <see cref="ValidationData"/> or else the calibration data) and moves the
    /// least sensitive per weight saved to 4 bits (packed int4, see <see cref="WeightBits"/>) until the weights fit;
    /// the choice is in the report (<see cref="QuantizationReport.MixedPrecision"/>). Combines with the tolerance
    /// search, which then works on the mixed model.</summary>
    public double? WeightSizeBudget { get; set; }

    /// <summary>The accuracy tolerance: with it, Fit ranks the quantized nodes by sensitivity and leaves the fewest in
    /// float until <see cref="Metric"/> on <see cref="ValidationData"/> is within it of the float model's, in at most
    /// <see cref="MaxTrials"/> evaluations; the trail is in the report (<see cref="QuantizationReport.ToleranceSearch"/>)
    /// and the log. Null (the default): no search.</summary>
    public AccuracyTolerance? AccuracyTolerance { get; set; }

    /// <summary>The data the tolerance search evaluates every candidate on (hold it out from the calibration data).</summary>
    public Microsoft.ML.IDataView? ValidationData { get; set; }

    /// <summary>The metric the tolerance search keeps within tolerance.</summary>
    public QuantizationMetric? Metric { get; set; }

    /// <summary>The most models the tolerance search evaluates (the fully quantized one included).</summary>
    public int MaxTrials { get; set; } = 20;

    /// <summary>Rows (the first ones) on which the tolerance search and the mixed-precision choice rank the nodes by
    /// sensitivity: of <see cref="ValidationData"/>, else of the calibration data.</summary>
    public int SensitivityRows { get; set; } = 256;

    /// <summary>Static int8 for transformer encoders (BERT, MiniLM …): MatMul and Gemm, and int8 embedding tables
    /// (Gather) — LayerNormalization, Softmax, GELU and the residual additions stay float, as a published NER case shows
    /// they must (F1 0.94 → 0.10 with the whole graph quantized, 0.91 with them float) — histogram calibration over 128
    /// rows in batches of 8, SmoothQuant α 0.5, and <see cref="CpuMatMulKernels"/> (set it false for GPU deployment).</summary>
    /// <param name="modelPath">The float ONNX model.</param>
    /// <param name="smoothQuantAlpha">SmoothQuant's α (default 0.5), or null for none. Measured (BENCHMARKS.md): on
    /// all-MiniLM-L6-v2 embedding cosine 0.9957 with α 0.5 against 0.9931 without, top-10 agreement 95 % against 92 %,
    /// the same speed; on arctic-embed-xs 0.9992 against 0.9990 at about 3 % of the speed (a Mul per smoothed LayerNorm
    /// output: a BERT's LayerNorm outputs also feed its residual additions, so the factors cannot be folded into
    /// them).</param>
    public static OnnxQuantizationOptions ForTransformers(string modelPath, double? smoothQuantAlpha = 0.5) => new()
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
        if (WeightBits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(WeightBits), WeightBits, "WeightBits must be 2 to 8.");
        AdaRound?.Validate();
        if (WeightSizeBudget is double budget)
        {
            if (!(budget >= 0.125) || double.IsInfinity(budget))
                throw new ArgumentOutOfRangeException(nameof(WeightSizeBudget), budget, "WeightSizeBudget must be at least 0.125 (int4 weights everywhere), or null.");
            if (WeightBits != 8)
                throw new ArgumentException("WeightSizeBudget chooses 4 or 8 bits per layer: leave WeightBits at 8.", nameof(WeightSizeBudget));
            if (SensitivityRows < 1) throw new ArgumentOutOfRangeException(nameof(SensitivityRows), SensitivityRows, "SensitivityRows must be >= 1.");
        }
        if (AccuracyTolerance is not null)
        {
            if (ValidationData is null) throw new ArgumentException("AccuracyTolerance needs ValidationData to evaluate candidates on.", nameof(ValidationData));
            if (Metric is null) throw new ArgumentException("AccuracyTolerance needs a Metric (QuantizationMetric.MulticlassAccuracy …).", nameof(Metric));
            if (Metric.NeedsPredictedLabel && (PredictedLabelColumnName is null || LabelColumnName is null))
                throw new ArgumentException($"The metric {Metric.Name} reads ML.NET's predicted label: set PredictedLabelColumnName and LabelColumnName (a key column).",
                    nameof(Metric));
            if (MaxTrials < 1) throw new ArgumentOutOfRangeException(nameof(MaxTrials), MaxTrials, "MaxTrials must be >= 1.");
            if (SensitivityRows < 1) throw new ArgumentOutOfRangeException(nameof(SensitivityRows), SensitivityRows, "SensitivityRows must be >= 1.");
        }
        else if (Metric is not null || ValidationData is not null && WeightSizeBudget is null)
            throw new ArgumentException("ValidationData and Metric are for the tolerance search (ValidationData also for WeightSizeBudget): set AccuracyTolerance too.",
                nameof(AccuracyTolerance));
        if (SmoothQuantAlpha is double alpha && !(alpha > 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(SmoothQuantAlpha), alpha, "SmoothQuantAlpha must be in (0, 1], or null for none.");
    }
}
