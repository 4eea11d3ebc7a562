using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.OnnxPtq;

namespace MLNetQuant;

/// <summary>Post-training quantization of an existing float ONNX model as an ML.NET estimator: <see cref="Fit"/>
/// calibrates in ONNX Runtime over its input (Observer) or only rounds the weights (Naive), and returns the same
/// <see cref="QuantizedModelTransformer"/> as the training estimators.</summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// ### Estimator characteristics
/// |  |  |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | Observer: yes (calibration); Naive: no |
/// | Input column data type | Known-size vector of <xref:System.Single>, the size of the model's input |
/// | Output column data type | Known-size vector of <xref:System.Single> (the model's first output); with PredictedLabelColumnName, a key (the arg-max class) |
/// | Required NuGet in addition to Microsoft.ML | MLNetQuant, Microsoft.ML.OnnxTransformer, ONNX Runtime |
/// ]]></format>
/// </remarks>
public sealed class OnnxQuantizationEstimator : IEstimator<QuantizedModelTransformer>
{
    private readonly MLContext _ml;
    private readonly OnnxQuantizationOptions _options;
    private readonly bool _weightOnly;

    internal OnnxQuantizationEstimator(MLContext ml, OnnxQuantizationOptions options, bool weightOnly)
    {
        _ml = ml;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        _weightOnly = weightOnly;
    }

    /// <summary>Calibrates (Observer) or rounds (Naive) and wraps the QDQ model.</summary>
    public QuantizedModelTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var label = LabelColumn(input.Schema);
        var quantizer = new OnnxPostTrainingQuantizer(_options);
        var (onnx, report) = quantizer.Quantize(_ml, input, _weightOnly);
        return new QuantizedModelTransformer(_ml, onnx, _options.FeatureColumnName, _options.ScoreColumnName, report,
            _options.PredictedLabelColumnName, label);
    }

    private DataViewSchema.Column? LabelColumn(DataViewSchema schema)
    {
        if (_options.LabelColumnName is null) return null;
        var label = schema.GetColumnOrNull(_options.LabelColumnName) ?? throw new ArgumentException(
            $"The input has no label column '{_options.LabelColumnName}' (OnnxQuantizationOptions.LabelColumnName).", nameof(schema));
        if (label.Type is not KeyDataViewType)
            throw new ArgumentException($"Label column '{_options.LabelColumnName}' must be a key (MapValueToKey) whose values name the classes; it is {label.Type}.", nameof(schema));
        return label;
    }

    /// <summary>The input columns plus the score column and, with
    /// <see cref="OnnxQuantizationOptions.PredictedLabelColumnName"/>, the key-typed predicted label.</summary>
    /// <exception cref="ArgumentException">A missing or non-vector features column; a missing or non-key label column.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var features = inputSchema.FirstOrDefault(c => c.Name == _options.FeatureColumnName);
        if (features.Name is null || features.Kind != SchemaShape.Column.VectorKind.Vector)
            throw new ArgumentException($"The input needs a known-size Single vector column '{_options.FeatureColumnName}'.", nameof(inputSchema));
        if (_options.PredictedLabelColumnName is not null)
        {
            SchemaShape.Column? label = null;
            if (_options.LabelColumnName is not null)
            {
                var column = inputSchema.FirstOrDefault(c => c.Name == _options.LabelColumnName);
                if (column.Name is null || !column.IsKey || column.Kind != SchemaShape.Column.VectorKind.Scalar)
                    throw new ArgumentException($"The input needs a key column '{_options.LabelColumnName}' (OnnxQuantizationOptions.LabelColumnName).", nameof(inputSchema));
                label = column;
            }
            return ScoreColumnsShape.Append(_ml, inputSchema, _options.ScoreColumnName, ClassCount(), _options.PredictedLabelColumnName, label);
        }
        var withoutScore = new SchemaShape(inputSchema.Where(c => c.Name != _options.ScoreColumnName));
        return _ml.Transforms.CopyColumns(_options.ScoreColumnName, _options.FeatureColumnName).GetOutputSchema(withoutScore);
    }

    // The number of values per row of the model's first output: the classes.
    private int ClassCount()
    {
        var output = _options.ReadModel().Graph.Output[0];
        var dims = output.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
        if (dims.Length == 0 || dims.Any(d => d <= 0))
            throw new InvalidOperationException($"The model's output '{output.Name}' has no fixed size per row, so it cannot be read as one score per class.");
        return checked((int)dims.Aggregate(1L, (a, b) => a * b));
    }
}
