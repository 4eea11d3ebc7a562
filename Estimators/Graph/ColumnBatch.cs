using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace MLNetQuant.Graph;

/// <summary>One model input's column, read row by row into a reusable batch buffer of the element type the input takes
/// (float, double, int64, int32, bool), handed on as an ONNX Runtime value (calibration) or a TorchSharp tensor
/// (training), shaped [rows, row dims…].</summary>
internal abstract class ColumnBatch
{
    /// <summary>A buffer for <paramref name="batchSize"/> rows of <paramref name="column"/>. When <paramref name="finiteName"/>
    /// is given, a float value that is NaN or infinite is an error naming that column and the row.</summary>
    public static ColumnBatch Create(DataViewRowCursor cursor, DataViewSchema.Column column, InputBinding binding, int batchSize,
        string? finiteName = null) => binding.ElementType switch
        {
            OnnxTensors.Float => new ColumnBatch<float>(cursor, column, binding, batchSize, (v, s) => tensor(v, s), finiteName),
            OnnxTensors.Double => new ColumnBatch<double>(cursor, column, binding, batchSize, (v, s) => tensor(v, s)),
            OnnxTensors.Int64 => new ColumnBatch<long>(cursor, column, binding, batchSize, (v, s) => tensor(v, s)),
            OnnxTensors.Int32 => new ColumnBatch<int>(cursor, column, binding, batchSize, (v, s) => tensor(v, s)),
            OnnxTensors.Bool => new ColumnBatch<bool>(cursor, column, binding, batchSize, (v, s) => tensor(v, s)),
            _ => throw new NotSupportedException($"Model input '{binding.GraphInput}' has ONNX element type {binding.ElementType}."),
        };

    /// <summary>Reads the cursor's current row into batch row <paramref name="row"/> (<paramref name="rowIndex"/> for messages).</summary>
    public abstract void Read(int row, long rowIndex);

    /// <summary>The first <paramref name="rows"/> rows for ONNX Runtime (a copy; the caller disposes it).</summary>
    public abstract OrtValue ToOrtValue(int rows);

    /// <summary>The first <paramref name="rows"/> rows as a CPU tensor (a full batch reuses the buffer, so consume it
    /// before the next batch is read).</summary>
    public abstract Tensor ToTensor(int rows);
}

internal sealed class ColumnBatch<T> : ColumnBatch where T : unmanaged
{
    private readonly T[] _values;
    private readonly int _rowSize;
    private readonly long[] _rowDims;
    private readonly string? _finiteName;
    private readonly Func<T[], long[], Tensor> _tensor;
    private readonly ValueGetter<VBuffer<T>>? _vectorGetter;
    private readonly ValueGetter<T>? _scalarGetter;
    private VBuffer<T> _row;

    public ColumnBatch(DataViewRowCursor cursor, DataViewSchema.Column column, InputBinding binding, int batchSize, Func<T[], long[], Tensor> tensor,
        string? finiteName = null)
    {
        _rowSize = checked((int)binding.RowSize);
        _rowDims = binding.RowDims;
        _values = new T[checked(_rowSize * batchSize)];
        _tensor = tensor;
        _finiteName = finiteName;
        if (column.Type is VectorDataViewType) _vectorGetter = cursor.GetGetter<VBuffer<T>>(column);
        else _scalarGetter = cursor.GetGetter<T>(column);
    }

    public override void Read(int row, long rowIndex)
    {
        var slice = _values.AsSpan(row * _rowSize, _rowSize);
        if (_vectorGetter is not null)
        {
            _vectorGetter(ref _row);
            _row.CopyTo(slice);
        }
        else
        {
            T value = default;
            _scalarGetter!(ref value);
            slice[0] = value;
        }
        if (_finiteName is null) return;
        foreach (var v in System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(slice))
            if (!float.IsFinite(v))
                throw new InvalidDataException($"Row {rowIndex}: {_finiteName} holds {v}.");
    }

    public override OrtValue ToOrtValue(int rows) => OrtValue.CreateTensorValueFromMemory(Copy(rows), Shape(rows));

    // Full batches reuse the buffer (no per-batch large-object allocation, hence far fewer full GCs while TorchSharp's
    // finalizers run).
    public override Tensor ToTensor(int rows) => _tensor(rows * _rowSize == _values.Length ? _values : Copy(rows), Shape(rows));

    private T[] Copy(int rows) => _values.AsSpan(0, rows * _rowSize).ToArray();

    private long[] Shape(int rows) => new[] { (long)rows }.Concat(_rowDims).ToArray();
}
