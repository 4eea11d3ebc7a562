using TorchSharp;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>Reads an IDataView as tensor batches through a cursor: the model's inputs (<see cref="ModelInputs"/>: a
/// known-size float vector features column reshaped to the input shape, or one column per graph input of its own
/// element type) and a label column (key, uint, int → class indices; float → regression targets). Holds one batch in
/// memory at a time; rejects missing keys, out-of-range classes and non-finite values with the row and column at
/// fault.</summary>
internal sealed class DataViewBatches
{
    private readonly ModelInputs _inputs;
    private readonly string _labelColumn;

    private DataViewBatches(ModelInputs inputs, string labelColumn, LabelKind kind, long? keyCount)
    {
        _inputs = inputs;
        _labelColumn = labelColumn;
        Kind = kind;
        KeyCount = keyCount;
    }

    /// <summary>The model's inputs, bound to the columns of the schema this reader was made for.</summary>
    public ModelInputs Inputs => _inputs;

    /// <summary>How labels are read.</summary>
    public LabelKind Kind { get; }

    /// <summary>Classes a key-typed label declares, or null.</summary>
    public long? KeyCount { get; }

    /// <summary>Whether the labels are classes (else regression targets).</summary>
    public bool IsClassification => Kind != LabelKind.Single;

    /// <summary>Number of classes, once the model's output size is known (classification only).</summary>
    public long Classes { get; set; }

    /// <summary>Checks the schema and returns a reader for it.</summary>
    /// <exception cref="ArgumentException">A missing column, or one of the wrong type or size; the message names it.</exception>
    public static DataViewBatches For(DataViewSchema schema, QuantizationOptions options, string dataName)
    {
        var inputs = ModelInputs.For(options, schema); // binds (and checks) each graph input's column
        if (inputs.IsFlat)
        {
            var (featureColumn, inputShape) = (options.FeatureColumnName, options.InputShape);
            var expected = inputShape.Aggregate(1L, (a, b) => a * b);
            var features = schema.GetColumnOrNull(featureColumn) ?? throw new ArgumentException(
                $"The {dataName} has no features column '{featureColumn}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.");
            if (features.Type is not VectorDataViewType { ItemType: var item, Size: var size } || item != NumberDataViewType.Single)
                throw new ArgumentException(
                    $"Features column '{featureColumn}' of the {dataName} must be a known-size vector of Single; it is {features.Type}.");
            if (size != expected)
                throw new ArgumentException(
                    $"Features column '{featureColumn}' of the {dataName} has {size} values per row (0 = variable size), but " +
                    $"InputShape [{string.Join(", ", inputShape)}] needs {expected}.");
        }
        var labelColumn = options.LabelColumnName;
        var label = schema.GetColumnOrNull(labelColumn) ?? throw new ArgumentException(
            $"The {dataName} has no label column '{labelColumn}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.");
        var type = label.Type;
        var (kind, keyCount) = type switch
        {
            KeyDataViewType key when key.RawType == typeof(uint) => (LabelKind.Key, (long?)key.Count),
            _ when type == NumberDataViewType.UInt32 => (LabelKind.UInt32, null),
            _ when type == NumberDataViewType.Int32 => (LabelKind.Int32, null),
            _ when type == NumberDataViewType.Single => (LabelKind.Single, null),
            _ => throw new ArgumentException(
                $"Label column '{labelColumn}' of the {dataName} is {type}; use a key (MapValueToKey), UInt32 or Int32 for " +
                "classification, or Single for regression."),
        };
        return new DataViewBatches(inputs, labelColumn, kind, keyCount);
    }

    /// <summary>Streams batches of at most <paramref name="batchSize"/> rows (fewer when <paramref name="maxRows"/>
    /// runs out), each on <paramref name="device"/>. The caller disposes each batch.</summary>
    public IEnumerable<TensorBatch> Read(IDataView data, int batchSize, Device device, CancellationToken cancel, long maxRows = 0)
    {
        var label = data.Schema[_labelColumn];
        var inputColumns = _inputs.Bindings.Select(b => data.Schema[b.Column]).ToArray();
        using var cursor = data.GetRowCursor(inputColumns.Append(label));
        var inputs = _inputs.Bindings.Select((b, i) => Graph.ColumnBatch.Create(cursor, inputColumns[i], b, batchSize,
            _inputs.IsFlat ? $"features column '{b.Column}'" : $"column '{b.Column}' (model input '{b.GraphInput}')")).ToArray();
        var readLabel = LabelReader(cursor, label);
        var classes = new long[batchSize];
        var targets = new float[batchSize];
        long rowIndex = 0;
        while (true)
        {
            var count = 0;
            while (count < batchSize && (maxRows <= 0 || rowIndex < maxRows) && cursor.MoveNext())
            {
                foreach (var input in inputs) input.Read(count, rowIndex);
                var value = readLabel();
                if (IsClassification)
                {
                    var cls = Kind == LabelKind.Key ? value - 1 : value;
                    if (Kind == LabelKind.Key && value == 0)
                        throw new InvalidDataException($"Row {rowIndex}: label column '{_labelColumn}' holds a missing key.");
                    if (cls < 0 || cls >= Classes)
                        throw new InvalidDataException(
                            $"Row {rowIndex}: label column '{_labelColumn}' holds class {cls}, outside the model's {Classes} outputs.");
                    classes[count] = (long)cls;
                }
                else
                {
                    if (!double.IsFinite(value))
                        throw new InvalidDataException($"Row {rowIndex}: label column '{_labelColumn}' holds {value}.");
                    targets[count] = (float)value;
                }
                count++;
                rowIndex++;
            }
            if (count == 0) yield break;
            cancel.ThrowIfCancellationRequested();
            var ys = IsClassification
                ? tensor(count == batchSize ? classes : classes.AsSpan(0, count).ToArray())
                : tensor(count == batchSize ? targets : targets.AsSpan(0, count).ToArray());
            yield return new TensorBatch(inputs.Select(i => OnDevice(i.ToTensor(count), device)).ToArray(), OnDevice(ys, device), count);
            if (count < batchSize) yield break;
        }
    }

    private static Tensor OnDevice(Tensor cpuTensor, Device device)
    {
        if (device.type == DeviceType.CPU) return cpuTensor;
        using (cpuTensor) return cpuTensor.to(device);
    }

    private Func<double> LabelReader(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        switch (Kind)
        {
            case LabelKind.Key:
            case LabelKind.UInt32:
                var getUInt = cursor.GetGetter<uint>(column);
                return () => { uint v = 0; getUInt(ref v); return v; };
            case LabelKind.Int32:
                var getInt = cursor.GetGetter<int>(column);
                return () => { int v = 0; getInt(ref v); return v; };
            default:
                var getFloat = cursor.GetGetter<float>(column);
                return () => { float v = 0; getFloat(ref v); return v; };
        }
    }

    /// <summary>How labels are typed.</summary>
    public enum LabelKind
    {
        /// <summary>Key (1-based, 0 = missing).</summary>
        Key,

        /// <summary>UInt32 class index.</summary>
        UInt32,

        /// <summary>Int32 class index.</summary>
        Int32,

        /// <summary>Single regression target.</summary>
        Single,
    }
}

/// <summary>One batch on the device: one tensor per model input, and the labels.</summary>
internal sealed record TensorBatch(Tensor[] Inputs, Tensor Labels, int Count) : IDisposable
{
    public void Dispose()
    {
        foreach (var input in Inputs) input.Dispose();
        Labels.Dispose();
    }
}
