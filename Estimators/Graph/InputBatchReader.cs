using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace MLNetQuant.Graph;

/// <summary>Reads rows of an IDataView into ONNX Runtime input tensors, batch by batch, one tensor per bound graph
/// input (float, double, int64, int32 or bool), shaped [rows, row dims…].</summary>
internal sealed class InputBatchReader : IDisposable
{
    private readonly DataViewRowCursor _cursor;
    private readonly ColumnBatch[] _columns;

    public InputBatchReader(IDataView data, IReadOnlyList<InputBinding> bindings, int batchSize)
    {
        Bindings = bindings;
        var columns = bindings.Select(b => data.Schema[b.Column]).ToArray();
        _cursor = data.GetRowCursor(columns);
        _columns = bindings.Select((b, i) => ColumnBatch.Create(_cursor, columns[i], b, batchSize)).ToArray();
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
            foreach (var column in _columns) column.Read(count, count);
            count++;
        }
        return count;
    }

    /// <summary>The first <paramref name="rows"/> rows read, one tensor per input; the caller disposes them.</summary>
    public OrtValue[] Values(int rows) => _columns.Select(c => c.ToOrtValue(rows)).ToArray();

    public void Dispose() => _cursor.Dispose();
}
