namespace MLNetQuant.Export;

/// <summary>Rows of 4-bit codes in blocks along each row, as ONNX Runtime's block-quantized contrib ops store them: codes
/// two per byte, low nibble first; one scale and one zero-point per block, row-major [rows, blocks]; dequantized value
/// (code − zero-point) · scale. With padding (MatMulNBits' [N, blocks, block/2] layout) each row fills whole blocks and
/// the padding holds the zero-point (0.0); without (GatherBlockQuantized's [rows, length/2]) codes run back to back.
/// Grids are fitted block by block (<see cref="FitGrid"/>), then values written one by one (<see cref="Write"/>),
/// so GPTQ can fit a block's grid from weights it has already updated.</summary>
internal sealed class Int4Blocks
{
    /// <summary>The largest code (4 bits: 0…15).</summary>
    public const int Levels = 15;

    private const int SymmetricZeroPoint = 8; // the kernels' default zero-point: symmetric models store none
    private const int RangeSearchSteps = 20; // range factors 1.0, 0.98 … 0.60
    private const float MinimumScale = 1.1920929e-07f; // float32 eps: an all-zero block keeps a finite grid

    private readonly int _rowCodes;

    public Int4Blocks(int rows, int length, int blockSize, bool padToBlock)
    {
        (Rows, Length, BlockSize) = (rows, length, blockSize);
        BlockCount = (length + blockSize - 1) / blockSize;
        _rowCodes = padToBlock ? BlockCount * blockSize : length;
        Packed = new byte[(long)rows * _rowCodes / 2];
        Scales = new float[rows * BlockCount];
        ZeroPoints = new byte[rows * BlockCount];
    }

    public int Rows { get; }
    public int Length { get; }
    public int BlockSize { get; }
    public int BlockCount { get; }

    /// <summary>The codes, two per byte.</summary>
    public byte[] Packed { get; }

    /// <summary>One scale per block, [rows, blocks].</summary>
    public float[] Scales { get; }

    /// <summary>One zero-point per block, [rows, blocks] (8 throughout for symmetric blocks).</summary>
    public byte[] ZeroPoints { get; }

    /// <summary>Round to nearest on each block's own fitted grid: values read through <paramref name="at"/>(row, i).</summary>
    public static Int4Blocks RoundToNearest(int rows, int length, Func<int, int, float> at, int blockSize, bool symmetric, bool padToBlock)
    {
        var blocks = new Int4Blocks(rows, length, blockSize, padToBlock);
        var values = new float[blockSize];
        for (var row = 0; row < rows; row++)
            for (var block = 0; block < blocks.BlockCount; block++)
            {
                var (start, end) = blocks.Range(block);
                for (var i = start; i < end; i++) values[i - start] = at(row, i);
                blocks.FitGrid(row, block, values.AsSpan(0, end - start), symmetric);
                for (var i = start; i < end; i++) blocks.Write(row, i, values[i - start]);
            }
        return blocks;
    }

    /// <summary>The values [start, end) of a block along a row.</summary>
    public (int Start, int End) Range(int block) => (block * BlockSize, Math.Min(Length, (block + 1) * BlockSize));

    /// <summary>Fits the grid of one block to its <paramref name="values"/> and fills its padding with the zero-point.
    /// Affine: [min(w, 0), max(w, 0)] onto [0, 15], narrowed by the factor (1.0, 0.98 … 0.60) with the least squared
    /// rounding error — with 16 levels, clipping one outlier often buys the other values a finer step — then refined
    /// by least squares. Symmetric: the value of largest magnitude maps exactly to code 0 (−8 from zero-point 8), as
    /// ONNX Runtime's MLAS quantizer does.</summary>
    public void FitGrid(int row, int block, ReadOnlySpan<float> values, bool symmetric)
    {
        var (scale, zeroPoint) = symmetric ? SymmetricGrid(values) : AffineGrid(values);
        Scales[row * BlockCount + block] = scale;
        ZeroPoints[row * BlockCount + block] = (byte)zeroPoint;
        var (start, end) = Range(block);
        for (var i = end; i < start + BlockSize && i < _rowCodes; i++) Store(row, i, zeroPoint);
    }

    /// <summary>Rounds <paramref name="value"/> onto its block's grid, stores the code and returns the dequantized value.</summary>
    public float Write(int row, int i, float value)
    {
        var slot = row * BlockCount + i / BlockSize;
        var (scale, zeroPoint) = (Scales[slot], (int)ZeroPoints[slot]);
        var code = Code(value, scale, zeroPoint);
        Store(row, i, code);
        return (code - zeroPoint) * scale;
    }

    /// <summary>The zero-points two per byte along each row's blocks, low nibble first: [rows, ⌈blocks/2⌉].</summary>
    public byte[] PackedZeroPoints()
    {
        var perRow = (BlockCount + 1) / 2;
        var packed = new byte[Rows * perRow];
        for (var row = 0; row < Rows; row++)
            for (var block = 0; block < BlockCount; block++)
            {
                var zeroPoint = ZeroPoints[row * BlockCount + block];
                packed[row * perRow + block / 2] |= (byte)(block % 2 == 0 ? zeroPoint : zeroPoint << 4);
            }
        return packed;
    }

    private void Store(int row, int i, int code)
    {
        var position = (long)row * _rowCodes + i;
        var shift = position % 2 == 0 ? 0 : 4;
        Packed[position / 2] = (byte)((Packed[position / 2] & ~(0xF << shift)) | (code << shift));
    }

    private static int Code(float value, float scale, int zeroPoint) =>
        Math.Clamp((int)Math.Round(value / scale, MidpointRounding.ToEven) + zeroPoint, 0, Levels);

    private static (float Scale, int ZeroPoint) AffineGrid(ReadOnlySpan<float> values)
    {
        float min = 0, max = 0;
        foreach (var w in values)
        {
            min = Math.Min(min, w);
            max = Math.Max(max, w);
        }
        var best = (Scale: MinimumScale, ZeroPoint: 0);
        var bestError = double.PositiveInfinity;
        for (var step = 0; step <= RangeSearchSteps; step++)
        {
            var factor = 1f - step * 0.02f;
            var scale = Math.Max((max - min) * factor / Levels, MinimumScale);
            var zeroPoint = Math.Clamp((int)Math.Round(-min * factor / scale, MidpointRounding.ToEven), 0, Levels);
            var error = SquaredError(values, scale, zeroPoint);
            if (error < bestError) (best, bestError) = ((scale, zeroPoint), error);
        }
        return Refine(values, best, bestError);
    }

    // With the codes fixed, the scale that best fits the block for zero-point z is Σ w·(q − z) / Σ (q − z)²; alternate
    // codes and (scale, zero-point among z−1, z, z+1) while the error falls.
    private static (float Scale, int ZeroPoint) Refine(ReadOnlySpan<float> values, (float Scale, int ZeroPoint) grid, double gridError)
    {
        for (var round = 0; round < 4; round++)
        {
            var improved = false;
            var (scale, zeroPoint) = grid;
            for (var z = Math.Max(0, zeroPoint - 1); z <= Math.Min(Levels, zeroPoint + 1); z++)
            {
                double numerator = 0, denominator = 0;
                foreach (var w in values)
                {
                    var q = Code(w, scale, zeroPoint) - z;
                    numerator += w * q;
                    denominator += q * q;
                }
                if (denominator == 0 || numerator <= 0) continue;
                var fitted = Math.Max((float)(numerator / denominator), MinimumScale);
                var error = SquaredError(values, fitted, z);
                if (error < gridError) (grid, gridError, improved) = ((fitted, z), error, true);
            }
            if (!improved) break;
        }
        return grid;
    }

    private static (float Scale, int ZeroPoint) SymmetricGrid(ReadOnlySpan<float> values)
    {
        float extreme = 0;
        foreach (var w in values)
            if (Math.Abs(w) > Math.Abs(extreme)) extreme = w;
        var scale = extreme / -SymmetricZeroPoint;
        return (Math.Abs(scale) < MinimumScale ? MinimumScale : scale, SymmetricZeroPoint);
    }

    private static double SquaredError(ReadOnlySpan<float> values, float scale, int zeroPoint)
    {
        double error = 0;
        foreach (var w in values)
        {
            var difference = (Code(w, scale, zeroPoint) - zeroPoint) * scale - w;
            error += difference * difference;
        }
        return error;
    }
}
