using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Onnx;

namespace MLNetQuant;

/// <summary>The model an MLNetQuant estimator returns: ML.NET's own <see cref="OnnxTransformer"/> over the exported
/// QDQ ONNX model — followed, for classifiers, by ML.NET's multiclass scorer that adds the key-typed PredictedLabel —
/// with everything (transform, schema, row-to-row mapping, saving) delegated to them. Saved with
/// <c>mlContext.Model.Save</c>, the .zip holds ordinary ML.NET entries (an OnnxTransform, or a TransformerChain of it
/// and a MulticlassPredictionTransformer), so production loads it with Microsoft.ML, Microsoft.ML.OnnxTransformer
/// and ONNX Runtime alone. It owns the temporary .onnx file the OnnxTransformer reads (also at save time) and
/// deletes it on <see cref="Dispose"/>.</summary>
public sealed class QuantizedModelTransformer : ITransformer, IDisposable
{
    private readonly OnnxTransformer _onnx;
    private readonly ITransformer _pipeline;
    private readonly string _modelPath;
    private readonly byte[] _onnxBytes;
    private bool _disposed;

    /// <summary>Wraps exported ONNX bytes.</summary>
    /// <param name="ml">The context whose GPU settings (GpuDeviceId, FallbackToCpu) the ONNX session uses.</param>
    /// <param name="onnxModel">A QDQ ONNX model whose input is <paramref name="featureColumn"/> and output
    /// <paramref name="scoreColumn"/>.</param>
    /// <param name="featureColumn">Input column: a known-size float vector.</param>
    /// <param name="scoreColumn">Output column.</param>
    /// <param name="report">The per-layer quantization report (also inside the model's metadata).</param>
    /// <param name="predictedLabelColumn">For a classifier whose score column holds the class probabilities: the
    /// key-typed column to add with the arg-max class (ML.NET's "PredictedLabel"); null for none (regression).</param>
    /// <param name="label">The training label column, whose key values name the predicted keys (a key label with one
    /// value per class); otherwise the keys' values are the class indices 0…K-1.</param>
    public QuantizedModelTransformer(MLContext ml, byte[] onnxModel, string featureColumn, string scoreColumn,
        QuantizationReport report, string? predictedLabelColumn = null, DataViewSchema.Column? label = null)
    {
        ArgumentNullException.ThrowIfNull(ml);
        _onnxBytes = onnxModel ?? throw new ArgumentNullException(nameof(onnxModel));
        Report = report ?? throw new ArgumentNullException(nameof(report));
        FeatureColumnName = featureColumn;
        ScoreColumnName = scoreColumn;
        _modelPath = Path.Combine(Path.GetTempPath(), $"mlnetquant-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(_modelPath, onnxModel);
        try
        {
            var input = EmptyInput(ml, onnxModel, featureColumn);
            _onnx = ml.Transforms.ApplyOnnxModel(new[] { scoreColumn }, new[] { featureColumn }, _modelPath,
                ml.GpuDeviceId, ml.FallbackToCpu).Fit(input);
            _pipeline = _onnx;
            if (predictedLabelColumn is not null)
            {
                var scored = _onnx.GetOutputSchema(input.Schema);
                _pipeline = new TransformerChain<ITransformer>(_onnx,
                    PredictedLabelStage.Create(ml, scored, scoreColumn, predictedLabelColumn, label));
                PredictedLabelColumnName = predictedLabelColumn;
            }
        }
        catch
        {
            _onnx?.Dispose();
            File.Delete(_modelPath);
            throw;
        }
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    // OnnxScoringEstimator.Fit only checks the input schema: give it an empty view with the features column.
    private static IDataView EmptyInput(MLContext ml, byte[] onnxModel, string featureColumn)
    {
        var graph = global::Onnx.ModelProto.Parser.ParseFrom(onnxModel).Graph;
        var input = graph.Input.FirstOrDefault(i => i.Name == featureColumn) ?? throw new ArgumentException(
            $"The ONNX model has no input named '{featureColumn}'.", nameof(featureColumn));
        var dims = input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
        var size = (int)dims.Aggregate(1L, (a, b) => a * b);
        var definition = SchemaDefinition.Create(typeof(FeatureRow));
        definition[nameof(FeatureRow.Features)].ColumnName = featureColumn;
        definition[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return ml.Data.LoadFromEnumerable(Array.Empty<FeatureRow>(), definition);
    }

    /// <summary>The input column.</summary>
    public string FeatureColumnName { get; }

    /// <summary>The output column.</summary>
    public string ScoreColumnName { get; }

    /// <summary>The key-typed arg-max column of a classifier; null for a regressor.</summary>
    public string? PredictedLabelColumnName { get; }

    /// <summary>What was quantized and how.</summary>
    public QuantizationReport Report { get; }

    /// <summary>The QDQ ONNX model (a copy).</summary>
    public byte[] GetOnnxBytes() => (byte[])_onnxBytes.Clone();

    /// <summary>Writes the QDQ ONNX model to <paramref name="path"/>, for ONNX Runtime outside ML.NET.</summary>
    public void SaveOnnx(string path) => File.WriteAllBytes(path, _onnxBytes);

    /// <inheritdoc />
    public bool IsRowToRowMapper => _pipeline.IsRowToRowMapper;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _pipeline.GetOutputSchema(inputSchema);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _pipeline.GetRowToRowMapper(inputSchema);

    /// <inheritdoc />
    public IDataView Transform(IDataView input)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _pipeline.Transform(input);
    }

    /// <inheritdoc />
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _pipeline.Save(ctx);
    }

    /// <summary>Releases the ONNX session and deletes the temporary model file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _onnx.Dispose();
        try
        {
            File.Delete(_modelPath);
        }
        catch (IOException)
        {
            // A file still mapped elsewhere is left to the OS's temp cleanup.
        }
    }
}
