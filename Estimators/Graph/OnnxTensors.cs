using Google.Protobuf;
using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Reading and writing the values of ONNX tensors (initializers, Constant attributes), whether the exporter
/// stored them as raw_data or in the typed fields.</summary>
internal static class OnnxTensors
{
    /// <summary>ONNX element type numbers (onnx.proto's TensorProto.DataType) the graph code reads.</summary>
    public const int Float = 1, UInt8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Double = 11;

    /// <summary>The float32 values of <paramref name="tensor"/> (the graph builder's reader, named here beside
    /// <see cref="Longs"/>).</summary>
    public static float[] Floats(TensorProto tensor) => MLNetQuant.Onnx.OnnxGraphBuilder.Floats(tensor);

    /// <summary>The integer values of an int64 or int32 <paramref name="tensor"/>, as longs.</summary>
    public static long[] Longs(TensorProto tensor)
    {
        switch (tensor.DataType)
        {
            case Int64 when tensor.RawData.Length == 0:
                return tensor.Int64Data.ToArray();
            case Int64:
                var longs = new long[tensor.RawData.Length / 8];
                Buffer.BlockCopy(tensor.RawData.ToByteArray(), 0, longs, 0, longs.Length * 8);
                return longs;
            case Int32 when tensor.RawData.Length == 0:
                return tensor.Int32Data.Select(v => (long)v).ToArray();
            case Int32:
                var ints = new int[tensor.RawData.Length / 4];
                Buffer.BlockCopy(tensor.RawData.ToByteArray(), 0, ints, 0, ints.Length * 4);
                return ints.Select(v => (long)v).ToArray();
            default:
                throw new NotSupportedException($"Tensor '{tensor.Name}' is not int64 or int32 (ONNX element type {tensor.DataType}).");
        }
    }

    /// <summary>A float32 tensor stored as raw_data.</summary>
    public static TensorProto FromFloats(string name, float[] values, params long[] dims)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        var tensor = new TensorProto { Name = name, DataType = Float, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    /// <summary>Replaces the values of float32 <paramref name="tensor"/> (same element count), stored as raw_data.</summary>
    public static void SetFloats(TensorProto tensor, float[] values)
    {
        if (tensor.DataType != Float || ElementCount(tensor) != values.Length)
            throw new InvalidOperationException($"Tensor '{tensor.Name}' is not a float32 tensor of {values.Length} values.");
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        tensor.FloatData.Clear();
        tensor.RawData = ByteString.CopyFrom(bytes);
    }

    /// <summary>An int64 tensor stored as raw_data.</summary>
    public static TensorProto FromLongs(string name, long[] values, params long[] dims)
    {
        var bytes = new byte[values.Length * 8];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        var tensor = new TensorProto { Name = name, DataType = Int64, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    /// <summary>The number of elements <paramref name="tensor"/>'s dims describe (1 for a scalar).</summary>
    public static long ElementCount(TensorProto tensor) => tensor.Dims.Aggregate(1L, (a, b) => a * b);
}
