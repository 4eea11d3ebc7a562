using Onnx;
using MLNetQuant.Training;

namespace MLNetQuant.OnnxPtq;

/// <summary>Post-training quantization of an existing float ONNX model, calibrated in ONNX Runtime over an IDataView
/// (no TorchSharp involved): Observer (weights and activations) or Naive (weights only).</summary>
public sealed class OnnxQuantizationOptions
{
    /// <summary>Path of the float ONNX model. Set this or <see cref="ModelBytes"/>.</summary>
    public string? ModelPath { get; set; }

    /// <summary>The float ONNX model's bytes. Set this or <see cref="ModelPath"/>.</summary>
    public byte[]? ModelBytes { get; set; }

    /// <summary>For a model with one input: the known-size vector column that feeds it (its values fill the input's
    /// shape row by row). Models with several inputs read the columns named like their inputs, or
    /// <see cref="InputColumns"/>.</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The column the model's first output is written to, unless <see cref="OutputColumns"/> chooses.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Graph input name → the column that feeds it, where they differ. Each column is a known-size vector (or
    /// scalar) of the element type the input takes: Single, Double, Int64, Int32 or Boolean. Unmapped inputs read
    /// <see cref="FeatureColumnName"/> (one-input models) or the column of their own name.</summary>
    public IDictionary<string, string> InputColumns { get; set; } = new Dictionary<string, string>();

    /// <summary>Graph input name → its per-row shape (all dimensions after the batch), for inputs with symbolic
    /// dimensions (sequence length, image height and width) whose column does not carry them as
    /// VectorDataViewType dimensions. The quantized ONNX model stays dynamic; the ML.NET transformer feeds this
    /// shape.</summary>
    public IDictionary<string, long[]> InputShapes { get; set; } = new Dictionary<string, long[]>();

    /// <summary>Graph output name → column name, for each output to become a column. Empty (the default): the first
    /// output becomes <see cref="ScoreColumnName"/>.</summary>
    public IDictionary<string, string> OutputColumns { get; set; } = new Dictionary<string, string>();

    /// <summary>For a classifier whose first output holds one score per class (probabilities or logits): the key-typed
    /// column to add with the arg-max class, as ML.NET's multiclass trainers do (e.g. "PredictedLabel"). Null, the
    /// default, keeps the model's output as the score column only — an ONNX file does not say it is a classifier.</summary>
    public string? PredictedLabelColumnName { get; set; }

    /// <summary>With <see cref="PredictedLabelColumnName"/>: a key column of the data (e.g. from MapValueToKey) whose
    /// key values — one per class, in the model's output order — name the predicted keys. Null: the keys' values are
    /// the class indices 0…K-1 (UInt32).</summary>
    public string? LabelColumnName { get; set; }

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
    public IList<string> OpTypes { get; set; } = new List<string> { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add" };

    /// <summary>Node names left in float.</summary>
    public IList<string> ExcludedNodes { get; set; } = new List<string>();

    /// <summary>Weights: one int8 scale per output channel (true) or per tensor.</summary>
    public bool PerChannelWeights { get; set; } = true;

    /// <summary>Activations: int8 symmetric (true) or uint8 affine (false; ORT's fastest on x86).</summary>
    public bool SymmetricActivations { get; set; }

    /// <summary>Receives "calibrate" progress reports.</summary>
    public IProgress<QuantizationProgress>? Progress { get; set; }

    internal void Validate()
    {
        if ((ModelPath is null) == (ModelBytes is null))
            throw new ArgumentException("Set exactly one of ModelPath and ModelBytes.", ModelPath is null ? nameof(ModelBytes) : nameof(ModelPath));
        if (ModelPath is not null && !File.Exists(ModelPath))
            throw new FileNotFoundException($"No ONNX model at '{ModelPath}'.", ModelPath);
        ReadModel();
        if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException("FeatureColumnName must name a column.", nameof(FeatureColumnName));
        if (string.IsNullOrWhiteSpace(ScoreColumnName)) throw new ArgumentException("ScoreColumnName must name a column.", nameof(ScoreColumnName));
        if (PredictedLabelColumnName is not null && string.IsNullOrWhiteSpace(PredictedLabelColumnName))
            throw new ArgumentException("PredictedLabelColumnName must name a column, or be null for none.", nameof(PredictedLabelColumnName));
        if (LabelColumnName is not null && (string.IsNullOrWhiteSpace(LabelColumnName) || PredictedLabelColumnName is null))
            throw new ArgumentException("LabelColumnName only names the keys of PredictedLabelColumnName: set that too, and name a column.", nameof(LabelColumnName));
        if (!Enum.IsDefined(Calibration)) throw new ArgumentOutOfRangeException(nameof(Calibration), Calibration, "Unknown calibration method.");
        if (!(Percentile > 0 && Percentile <= 100)) throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, "Percentile must be in (0, 100].");
        if (CalibrationRows < 0) throw new ArgumentOutOfRangeException(nameof(CalibrationRows), CalibrationRows, "CalibrationRows must be >= 0.");
        if (ErrorReportRows < 0) throw new ArgumentOutOfRangeException(nameof(ErrorReportRows), ErrorReportRows, "ErrorReportRows must be >= 0.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (OpTypes is null || OpTypes.Count == 0) throw new ArgumentException("OpTypes must list at least one op type.", nameof(OpTypes));
        if (InputColumns is null || InputColumns.Any(p => string.IsNullOrWhiteSpace(p.Value)))
            throw new ArgumentException("InputColumns must map input names to column names.", nameof(InputColumns));
        if (OutputColumns is null || OutputColumns.Any(p => string.IsNullOrWhiteSpace(p.Value)) ||
            OutputColumns.Values.Distinct().Count() != OutputColumns.Count)
            throw new ArgumentException("OutputColumns must map output names to distinct column names.", nameof(OutputColumns));
        if (InputShapes is null || InputShapes.Any(p => p.Value is null || p.Value.Any(d => d <= 0)))
            throw new ArgumentException("InputShapes must give each input a per-row shape of positive dimensions.", nameof(InputShapes));
        var unsupported = OpTypes.Where(o => !SupportedOpTypes.Contains(o)).ToArray();
        if (unsupported.Length > 0)
            throw new ArgumentException($"OpTypes: {string.Join(", ", unsupported)} not supported; use {string.Join(", ", SupportedOpTypes)}.", nameof(OpTypes));
    }

    internal static readonly string[] SupportedOpTypes = { "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool" };

    /// <summary>How errors name the model: its path, or "ModelBytes".</summary>
    internal string ModelSource => ModelPath is not null ? $"'{ModelPath}'" : nameof(ModelBytes);

    /// <summary>The model of <see cref="ModelBytes"/> or <see cref="ModelPath"/>, parsed.</summary>
    /// <exception cref="ArgumentException">The bytes are not an ONNX model (the option is named).</exception>
    internal ModelProto ReadModel() => ModelBytes is not null
        ? OnnxModelReader.Read(ModelBytes, nameof(ModelBytes))
        : OnnxModelReader.Read(File.ReadAllBytes(ModelPath!), nameof(ModelPath), ModelPath);
}
