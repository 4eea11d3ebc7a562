using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Export;
using MLNetQuant.Modeling;
using MLNetQuant.Training;

namespace MLNetQuant;

/// <summary>An ML.NET estimator for one of MLNetQuant's algorithms: <see cref="Fit"/> trains or calibrates the
/// TorchSharp model of its options over the input data, exports it as a QDQ ONNX model and returns a
/// <see cref="QuantizedModelTransformer"/> that runs it in ONNX Runtime and saves in the ML.NET .zip.</summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// ### Estimator characteristics
/// |  |  |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | Yes (Naive: no) |
/// | Input column data type | Known-size vector of <xref:System.Single> (features) — or, for an ONNX model with several or non-float inputs, one column per graph input of the type it takes (Single, Double, Int64, Int32, Boolean); key, UInt32, Int32 or Single (label) |
/// | Output column data type | Score: known-size vector of <xref:System.Single> (class probabilities, or the regression value); PredictedLabel (classifiers): key, with the label's key values |
/// | Required NuGet in addition to Microsoft.ML | MLNetQuant, Microsoft.ML.OnnxTransformer, a TorchSharp native bundle (TorchSharp-cpu / -cuda-*) and ONNX Runtime (Microsoft.ML.OnnxRuntime or .Gpu) to train; Microsoft.ML.OnnxTransformer and ONNX Runtime only to load the saved model |
/// | GPU | Training uses CUDA when TorchSharp sees it (QuantDevice.Auto); inference follows MLContext.GpuDeviceId |
/// ]]></format>
/// </remarks>
public sealed class QuantizationEstimator : IEstimator<QuantizedModelTransformer>
{
    private readonly MLContext _ml;
    private readonly QuantizationOptions _options;
    private readonly int _seed;

    internal QuantizationEstimator(MLContext ml, QuantizationOptions options)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        // Drawn once, so every Fit of this estimator shuffles and initialises alike: fitting twice gives one model.
        _seed = QuantizationRunner.DrawSeed(ml);
    }

    /// <summary>The column the scores are written to.</summary>
    public string ScoreColumnName { get; init; } = "Score";

    /// <summary>The key-typed column a classifier writes its arg-max class to (ML.NET's name by default).</summary>
    public string PredictedLabelColumnName { get; init; } = "PredictedLabel";

    /// <summary>Trains or calibrates a copy of the options' model, exports the QDQ model, and wraps it. The module in
    /// <see cref="QuantizationOptions.Model"/> keeps its weights and running statistics (also when Fit throws), and
    /// fitting the same estimator twice on the same data gives the same model.</summary>
    public QuantizedModelTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var snapshot = _options.Model is null ? null : ModuleStateSnapshot.Capture(_options.Model);
        ExportedModel exported;
        bool isClassification, flat;
        try
        {
            var run = QuantizationRunner.Run(_ml, _options, _options.NeedsData ? input : null, _seed, exportable: true);
            (isClassification, flat) = (run.IsClassification, run.Inputs.IsFlat);
            exported = QdqExporter.Export(run.Network, run.Inputs, run.Outputs, run.IsClassification, ScoreColumnName);
        }
        finally
        {
            snapshot?.Restore();
        }
        var label = input.Schema.GetColumnOrNull(_options.LabelColumnName);
        var predictedLabel = isClassification ? PredictedLabelColumnName : null;
        return flat
            ? new QuantizedModelTransformer(_ml, exported.OnnxBytes, _options.FeatureColumnName, ScoreColumnName, exported.Report, predictedLabel, label)
            : new QuantizedModelTransformer(_ml, exported.OnnxBytes, exported.InputColumns!, new[] { ScoreColumnName }, exported.InputShapes,
                exported.Report, predictedLabel, label, input);
    }

    /// <summary>The input columns plus Score (a Single vector of the model's output size) and, for a classifier
    /// (a key, UInt32 or Int32 label, or no label for Naive), the key-typed PredictedLabel carrying the label's key
    /// values.</summary>
    /// <exception cref="ArgumentException">A missing features or label column, or one of the wrong type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInputColumns(inputSchema);
        var label = inputSchema.FirstOrDefault(c => c.Name == _options.LabelColumnName);
        if (label.Name is null && _options.NeedsData)
            throw new ArgumentException($"The input has no label column '{_options.LabelColumnName}'.", nameof(inputSchema));
        var classification = label.Name is null || IsClassificationLabel(label);
        if (label.Name is not null && !classification && (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.Single))
            throw new ArgumentException($"Label column '{_options.LabelColumnName}' must be a scalar key (MapValueToKey), UInt32 or Int32 " +
                "for classification, or Single for regression.", nameof(inputSchema));
        var outputs = OutputSize();
        if (outputs < 1) throw new InvalidOperationException("The model has no outputs.");
        if (classification && outputs < 2)
            throw new ArgumentException($"Label column '{_options.LabelColumnName}' makes this a classifier, but the model has a single output.", nameof(inputSchema));
        return ScoreColumnsShape.Append(_ml, inputSchema, ScoreColumnName, checked((int)outputs),
            classification ? PredictedLabelColumnName : null, label.Name is null ? null : label);
    }

    private static bool IsClassificationLabel(SchemaShape.Column label) =>
        label.Kind == SchemaShape.Column.VectorKind.Scalar
        && (label.IsKey || label.ItemType == NumberDataViewType.UInt32 || label.ItemType == NumberDataViewType.Int32);

    // The features column, or each graph input's column with the element type the model wants.
    private void CheckInputColumns(SchemaShape inputSchema)
    {
        if (_options.ImportedModel is not { } model || !_options.ReadsGraphInputs)
        {
            var features = inputSchema.FirstOrDefault(c => c.Name == _options.FeatureColumnName);
            if (features.Name is null)
                throw new ArgumentException($"The input has no features column '{_options.FeatureColumnName}'.", nameof(inputSchema));
            if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
                throw new ArgumentException($"Features column '{_options.FeatureColumnName}' must be a known-size vector of Single.", nameof(inputSchema));
            return;
        }
        foreach (var (graphInput, name, itemType) in Graph.InputBinding.Columns(model, _options.InputColumns, _options.FeatureColumnName))
        {
            var column = inputSchema.FirstOrDefault(c => c.Name == name);
            if (column.Name is null)
                throw new ArgumentException($"The input has no column '{name}' for the model input '{graphInput}' (map it with InputColumns).", nameof(inputSchema));
            if (column.ItemType != itemType)
                throw new ArgumentException($"Column '{name}' holds {column.ItemType}; the model input '{graphInput}' takes {itemType}.", nameof(inputSchema));
        }
    }

    private long OutputSize()
    {
        // A graph that reads its inputs from their columns may have symbolic dimensions no option fixes before data
        // arrives: its declared output size answers then.
        if (_options.ReadsGraphInputs && _options.ImportedModel!.Graph.Output[0].Type?.TensorType?.Shape?.Dim is { Count: 2 } dims && dims[1].DimValue > 0)
            return dims[1].DimValue;
        var model = _options.CreateModel(); // not disposed: it may be the caller's own Model
        return QuantizationRunner.OutputSize(model, ModelInputs.For(_options, null));
    }
}
