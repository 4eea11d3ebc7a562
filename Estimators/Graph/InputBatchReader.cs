using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace MLNetQuant.Graph;

/// <summary>Reads rows of an IDataView into ONNX Runtime input tensors, batch by batch, one tensor per bound graph
/// input (float, double, int64, int32 or bool), shaped [rows, row dims…].</summary>
internal sealed class InputBatchReader : IDisposable
{
    private readonly DataViewRowCursor _cursor;
    private readonly IColumnBuffer[] _columns;

    public InputBatchReader(IDataView data, IReadOnlyList<InputBinding> bindings, int batchSize)
    {
        Bindings = bindings;
        var columns = bindings.Select(b => data.Schema[b.Column]).ToArray();
        _cursor = data.GetRowCursor(columns);
        _columns = bindings.Select((b, i) => CreateBuffer(_cursor, columns[i], b, batchSize)).ToArray();
    }

    /// <summary>The inputs read, in order.</summary>
    public IReadOnlyList<InputBinding> Bindings { get; }

    /// <summary>The graph input names, in the order of <see cref="Values"/>.</summary>
    public string[] InputNames => Bindings.Select(b => b.GraphInput).ToArray();

    /// <summary>Reads up to <paramref name="maxRows"/> rows (at most the batch size); returns how many were read.</summary>
    public int Read(int maxRows)
    {
        var count = 0;
        while (count < maxRows && _cursor.MoveNext())
        {
            foreach (var column in _columns) column.Read(count);
            count++;
        }
        return count;
    }

    /// <summary>The first <paramref name="rows"/> rows read, one tensor per input; the caller disposes them.</summary>
    public OrtValue[] Values(int rows) => _columns.Select(c => c.ToOrtValue(rows)).ToArray();

    /// <summary>The first <paramref name="rows"/> rows of input <paramref name="index"/> as floats (float inputs only).</summary>
    public float[] Floats(int index, int rows) => ((ColumnBuffer<float>)_columns[index]).Copy(rows);

    public void Dispose() => _cursor.Dispose();

    private static IColumnBuffer CreateBuffer(DataViewRowCursor cursor, DataViewSchema.Column column, InputBinding binding, int batchSize) =>
        binding.ElementType switch
        {
            OnnxTensors.Float => new ColumnBuffer<float>(cursor, column, binding, batchSize),
            OnnxTensors.Double => new ColumnBuffer<double>(cursor, column, binding, batchSize),
            OnnxTensors.Int64 => new ColumnBuffer<long>(cursor, column, binding, batchSize),
            OnnxTensors.Int32 => new ColumnBuffer<int>(cursor, column, binding, batchSize),
            OnnxTensors.Bool => new ColumnBuffer<bool>(cursor, column, binding, batchSize),
            _ => throw new NotSupportedException($"Model input '{binding.GraphInput}' has ONNX element type {binding.ElementType}."),
        };

    private interface IColumnBuffer
    {
        void Read(int row);

        OrtValue ToOrtValue(int rows);
    }

    private sealed class ColumnBuffer<T> : IColumnBuffer where T : unmanaged
    {
        private readonly T[] _values;
        private readonly int _rowSize;
        private readonly long[] _rowDims;
        private readonly ValueGetter<VBuffer<T>>? _vectorGetter;
        private readonly ValueGetter<T>? _scalarGetter;
        private VBuffer<T> _row;

        public ColumnBuffer(DataViewRowCursor cursor, DataViewSchema.Column column, InputBinding binding, int batchSize)
        {
            _rowSize = checked((int)binding.RowSize);
            _rowDims = binding.RowDims;
            _values = new T[checked(_rowSize * batchSize)];
            if (column.Type is VectorDataViewType) _vectorGetter = cursor.GetGetter<VBuffer<T>>(column);
            else _scalarGetter = cursor.GetGetter<T>(column);
        }

        public void Read(int row)
        {
            if (_vectorGetter is not null)
            {
                _vectorGetter(ref _row);
                _row.CopyTo(_values.AsSpan(row * _rowSize, _rowSize));
            }
            else
            {
                T value = default;
                _scalarGetter!(ref value);
                _values[row] = value;
            }
        }

        public T[] Copy(int rows) => _values.AsSpan(0, rows * _rowSize).ToArray();

        public OrtValue ToOrtValue(int rows) =>
            OrtValue.CreateTensorValueFromMemory(Copy(rows), new[] { (long)rows }.Concat(_rowDims).ToArray());
    }
}
