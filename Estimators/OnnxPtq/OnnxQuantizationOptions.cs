using MLNetQuant.Training;

namespace MLNetQuant.OnnxPtq;

/// <summary>Static post-training quantization of an existing float ONNX model, calibrated in ONNX Runtime over an
/// IDataView (no TorchSharp involved): Observer (weights and activations) or Naive (weights only).</summary>
public sealed class OnnxQuantizationOptions : OnnxModelOptions
{
    private static readonly string[] Supported = { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool" };

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
    /// GlobalAveragePool (their data inputs; ORT fuses them into QLinear* kernels when a QuantizeLinear follows).</summary>
    public override IList<string> OpTypes { get; set; } = new List<string> { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add" };

    /// <summary>Activations: int8 symmetric (true) or uint8 affine (false; ORT's fastest on x86).</summary>
    public bool SymmetricActivations { get; set; }

    private protected override IReadOnlyCollection<string> SupportedOpTypes => Supported;

    internal override void Validate()
    {
        base.Validate();
        if (!Enum.IsDefined(Calibration)) throw new ArgumentOutOfRangeException(nameof(Calibration), Calibration, "Unknown calibration method.");
        if (!(Percentile > 0 && Percentile <= 100)) throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, "Percentile must be in (0, 100].");
        if (CalibrationRows < 0) throw new ArgumentOutOfRangeException(nameof(CalibrationRows), CalibrationRows, "CalibrationRows must be >= 0.");
        if (ErrorReportRows < 0) throw new ArgumentOutOfRangeException(nameof(ErrorReportRows), ErrorReportRows, "ErrorReportRows must be >= 0.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
    }
}
