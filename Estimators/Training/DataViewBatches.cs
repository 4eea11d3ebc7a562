using TorchSharp;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>Reads an IDataView as tensor batches through a cursor: a known-size float vector features column reshaped
/// to the input shape, and a label column (key, uint, int → class indices; float → regression targets). Holds one
/// batch in memory at a time; rejects missing keys, out-of-range classes and non-finite values with the row and
/// column at fault.</summary>
internal sealed class DataViewBatches
{
    private readonly string _featureColumn;
    private readonly string _labelColumn;
    private readonly long[] _inputShape;
    private readonly int _featureSize;

    private DataViewBatches(string featureColumn, string labelColumn, long[] inputShape, LabelKind kind, long? keyCount)
    {
        _featureColumn = featureColumn;
        _labelColumn = labelColumn;
        _inputShape = inputShape;
        _featureSize = checked((int)inputShape.Aggregate(1L, (a, b) => a * b));
        Kind = kind;
        KeyCount = keyCount;
    }

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
    public static DataViewBatches For(DataViewSchema schema, string featureColumn, string labelColumn, long[] inputShape,
        string dataName)
    {
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
        return new DataViewBatches(featureColumn, labelColumn, inputShape, kind, keyCount);
    }

    /// <summary>Streams batches of at most <paramref name="batchSize"/> rows (fewer when <paramref name="maxRows"/>
    /// runs out), each on <paramref name="device"/>. The caller disposes each batch.</summary>
    public IEnumerable<TensorBatch> Read(IDataView data, int batchSize, Device device, CancellationToken cancel, long maxRows = 0)
    {
        var features = data.Schema[_featureColumn];
        var label = data.Schema[_labelColumn];
        using var cursor = data.GetRowCursor(new[] { features, label });
        var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
        var readLabel = LabelReader(cursor, label);
        var x = new float[batchSize * _featureSize];
        var classes = new long[batchSize];
        var targets = new float[batchSize];
        VBuffer<float> row = default;
        long rowIndex = 0;
        while (true)
        {
            var count = 0;
            while (count < batchSize && (maxRows <= 0 || rowIndex < maxRows) && cursor.MoveNext())
            {
                getFeatures(ref row);
                var slice = x.AsSpan(count * _featureSize, _featureSize);
                row.CopyTo(slice);
                foreach (var v in slice)
                    if (!float.IsFinite(v))
                        throw new InvalidDataException($"Row {rowIndex}: features column '{_featureColumn}' holds {v}.");
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
            var shape = new long[_inputShape.Length + 1];
            shape[0] = count;
            _inputShape.CopyTo(shape, 1);
            // Full batches reuse the buffers (no per-batch large-object allocation, hence far fewer full GCs while
            // TorchSharp's finalizers run); the batch is consumed before the next one is read.
            var xs = count == batchSize ? tensor(x, shape) : tensor(x.AsSpan(0, count * _featureSize).ToArray(), shape);
            var ys = IsClassification
                ? tensor(count == batchSize ? classes : classes.AsSpan(0, count).ToArray())
                : tensor(count == batchSize ? targets : targets.AsSpan(0, count).ToArray());
            yield return new TensorBatch(OnDevice(xs, device), OnDevice(ys, device), count);
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

/// <summary>One batch on the device.</summary>
internal sealed record TensorBatch(Tensor Features, Tensor Labels, int Count) : IDisposable
{
    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
    }
}
