using Microsoft.ML;
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
/// | Output column data type | Known-size vector of <xref:System.Single> (the model's first output) |
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
        var quantizer = new OnnxPostTrainingQuantizer(_options);
        var (onnx, report) = quantizer.Quantize(_ml, input, _weightOnly);
        return new QuantizedModelTransformer(_ml, onnx, _options.FeatureColumnName, _options.ScoreColumnName, report);
    }

    /// <summary>The input columns plus the score column.</summary>
    /// <exception cref="ArgumentException">A missing or non-vector features column.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var features = inputSchema.FirstOrDefault(c => c.Name == _options.FeatureColumnName);
        if (features.Name is null || features.Kind != SchemaShape.Column.VectorKind.Vector)
            throw new ArgumentException($"The input needs a known-size Single vector column '{_options.FeatureColumnName}'.", nameof(inputSchema));
        var withoutScore = new SchemaShape(inputSchema.Where(c => c.Name != _options.ScoreColumnName));
        return _ml.Transforms.CopyColumns(_options.ScoreColumnName, _options.FeatureColumnName).GetOutputSchema(withoutScore);
    }
}
