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
        : this(ml, onnxModel, new[] { featureColumn }, new[] { scoreColumn }, null, report, predictedLabelColumn, label,
            input: null)
    {
    }

    /// <summary>Wraps a model with several inputs and outputs, each named after its column.</summary>
    /// <param name="ml">The context whose GPU settings the ONNX session uses.</param>
    /// <param name="onnxModel">The QDQ model; its input and output names are the column names.</param>
    /// <param name="inputColumns">The columns feeding the model's inputs.</param>
    /// <param name="outputColumns">The model outputs that become columns; the first is the score.</param>
    /// <param name="inputShapes">Shapes ML.NET feeds for inputs with symbolic dimensions ([1, row dims…]); null for none.</param>
    /// <param name="report">The quantization report.</param>
    /// <param name="predictedLabelColumn">See the other constructor.</param>
    /// <param name="label">See the other constructor.</param>
    /// <param name="input">A view with the input columns (no rows are read); null builds one from a one-input model.</param>
    internal QuantizedModelTransformer(MLContext ml, byte[] onnxModel, IReadOnlyList<string> inputColumns, IReadOnlyList<string> outputColumns,
        IDictionary<string, int[]>? inputShapes, QuantizationReport report, string? predictedLabelColumn, DataViewSchema.Column? label,
        IDataView? input)
    {
        ArgumentNullException.ThrowIfNull(ml);
        _onnxBytes = onnxModel ?? throw new ArgumentNullException(nameof(onnxModel));
        Report = report ?? throw new ArgumentNullException(nameof(report));
        InputColumnNames = inputColumns.ToArray();
        OutputColumnNames = outputColumns.ToArray();
        FeatureColumnName = InputColumnNames[0];
        ScoreColumnName = OutputColumnNames[0];
        _modelPath = Path.Combine(Path.GetTempPath(), $"mlnetquant-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(_modelPath, onnxModel);
        try
        {
            input ??= EmptyInput(ml, onnxModel, FeatureColumnName);
            var shapes = inputShapes is { Count: > 0 } ? new Dictionary<string, int[]>(inputShapes) : null;
            _onnx = ml.Transforms.ApplyOnnxModel(OutputColumnNames.ToArray(), InputColumnNames.ToArray(), _modelPath, shapes,
                ml.GpuDeviceId, ml.FallbackToCpu).Fit(input);
            _pipeline = _onnx;
            if (predictedLabelColumn is not null)
            {
                var scored = _onnx.GetOutputSchema(input.Schema);
                _pipeline = new TransformerChain<ITransformer>(_onnx,
                    PredictedLabelStage.Create(ml, scored, ScoreColumnName, predictedLabelColumn, label));
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

    /// <summary>The (first) input column.</summary>
    public string FeatureColumnName { get; }

    /// <summary>The (first) output column: the score.</summary>
    public string ScoreColumnName { get; }

    /// <summary>Every column the model reads, one per model input.</summary>
    public IReadOnlyList<string> InputColumnNames { get; }

    /// <summary>Every column the model writes (besides the predicted label).</summary>
    public IReadOnlyList<string> OutputColumnNames { get; }

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
