using Google.Protobuf;
using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>Fuses a BERT-style self-attention block whose Q, K and V projections are integer kernels into ONNX
/// Runtime's CPU <c>QAttention</c> (com.microsoft), the form ORT's own transformer tools give a quantized BERT:
/// <code>
/// X_q ─ MatMulIntegerToFloat(W_q, b_q) ─ Reshape ─ Transpose(0,2,1,3) ──┐
/// X_q ─ MatMulIntegerToFloat(W_k, b_k) ─ Reshape ─ Transpose(0,2,3,1) ─ MatMul ─ Div(√d) ─ Add(mask) ─ Softmax ─┐
/// X_q ─ MatMulIntegerToFloat(W_v, b_v) ─ Reshape ─ Transpose(0,2,1,3) ──────────────────────────────────────── MatMul
///   ─ Transpose(0,2,1,3) ─ [Q─DQ] ─ Reshape(B, S, H)
///     →   X_q ─ QAttention(W_qkv, b_qkv, mask_index = Cast(attention_mask, int32))
/// </code>
/// One integer GEMM for the three projections and ORT's attention kernel (heads in parallel, no Transpose passes, the
/// mask applied inside Softmax) replace about fifteen nodes per layer; the arithmetic is the same (the three projections'
/// codes and scales are concatenated unchanged; ORT masks with −10000, the export's constant may be larger — both make
/// a padded token's weight 0 in float32). Only the exact pattern fuses: a block that differs in any checked detail
/// (scale other than 1/√head_size, a mask not derived from a 2-D 0/1 input, projections on different inputs or grids)
/// is left as it is. The projections may be in the static writer's form (MatMulIntegerToFloat with its bias) or the
/// dynamic one's (DynamicQuantizeLinear → MatMulInteger → Cast → Mul by s_x·s_W → Add bias). A com.microsoft CPU kernel,
/// so it runs only where the user chose CPU kernels: <see cref="OnnxPtq.OnnxQuantizationOptions.CpuMatMulKernels"/>,
/// <see cref="OnnxPtq.DynamicQuantizationOptions.CpuAttentionKernels"/>.</summary>
internal static class QuantizedAttentionFusion
{
    /// <summary>Rewrites <paramref name="model"/> in place; returns how many attention blocks it fused.</summary>
    public static int Fuse(ModelProto model)
    {
        var graph = model.Graph;
        var editor = new GraphEditor(model);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var inputs = graph.Input.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var producer = GraphEditor.ProducerIndex(graph);
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        // Shape nodes only read dimensions (the export computes Reshape targets from them); they die with the block.
        foreach (var node in graph.Node.Where(n => n.OpType != "Shape"))
            foreach (var input in node.Input) readers[input] = readers.GetValueOrDefault(input) + 1;
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var masks = new Dictionary<string, string>(StringComparer.Ordinal);

        NodeProto? From(string tensor, string opType, string domain = "") =>
            producer.TryGetValue(tensor, out var p) && p.OpType == opType && (p.Domain == domain || (domain == "" && p.Domain == "ai.onnx")) ? p : null;
        // An intermediate tensor the fused node swallows: read once (besides Shape nodes) and not a graph output.
        bool Private(string tensor) => readers.GetValueOrDefault(tensor) == 1 && !outputs.Contains(tensor);
        NodeProto? Reader(string tensor) => graph.Node.FirstOrDefault(n => n.OpType != "Shape" && n.Input.Contains(tensor));
        float? Scalar(string tensor) =>
            initializers.TryGetValue(tensor, out var t) && t.DataType == OnnxTensors.Float && OnnxTensors.ElementCount(t) == 1 ? OnnxTensors.Floats(t)[0] : null;
        // Reshape targets are computed (Shape → Gather → Unsqueeze → Concat): their rank is read off the graph.
        var ranks = new StructuralRanks(model);
        bool Perm(NodeProto transpose, params long[] perm) => GraphEditor.Ints(transpose, "perm") is { } p && p.SequenceEqual(perm);

        // The integer projection a private Transpose(Reshape(…)) reads, in either form the writers produce.
        IntegerProjection? Projection(string transposed, params long[] perm)
        {
            if (From(transposed, "Transpose") is not { } transpose || !Perm(transpose, perm) || !Private(transposed)) return null;
            if (From(transpose.Input[0], "Reshape") is not { } reshape || !Private(transpose.Input[0]) || ranks.Of(reshape.Output[0]) != 4) return null;
            var projected = reshape.Input[0];
            if (!Private(projected)) return null;
            // Static: MatMulIntegerToFloat(x_q, W, s_x, s_W, z_x, z_W, bias).
            if (From(projected, "MatMulIntegerToFloat", GraphEditor.MicrosoftDomain) is { Input.Count: 7 } lowered)
                return new IntegerProjection(lowered.Input[0], lowered.Input[2], lowered.Input[4], lowered.Input[1], lowered.Input[3], lowered.Input[5], lowered.Input[6]);
            // Dynamic: Add(bias, Mul(Cast(MatMulInteger(x_q, W, z_x, z_W)), Mul(s_x, s_W))), x_q from DynamicQuantizeLinear.
            if (From(projected, "Add") is not { } biasAdd || biasAdd.Input.Count(initializers.ContainsKey) != 1) return null;
            var product = biasAdd.Input.First(i => !initializers.ContainsKey(i));
            if (!Private(product) || From(product, "Mul") is not { } rescale) return null;
            var (castOutput, scaleProduct) = From(rescale.Input[0], "Cast") is not null ? (rescale.Input[0], rescale.Input[1]) : (rescale.Input[1], rescale.Input[0]);
            if (From(castOutput, "Cast") is not { } cast || !Private(castOutput) || From(cast.Input[0], "MatMulInteger") is not { Input.Count: 4 } integer) return null;
            if (From(scaleProduct, "Mul") is not { } scales || From(integer.Input[0], "DynamicQuantizeLinear") is not { } quantize) return null;
            var weightScale = scales.Input.FirstOrDefault(initializers.ContainsKey);
            if (weightScale is null || !scales.Input.Contains(quantize.Output[1]) || integer.Input[2] != quantize.Output[2]) return null;
            return new IntegerProjection(integer.Input[0], quantize.Output[1], quantize.Output[2], integer.Input[1], weightScale, integer.Input[3],
                biasAdd.Input.First(initializers.ContainsKey));
        }

        var fused = 0;
        foreach (var softmax in graph.Node.Where(n => n.OpType == "Softmax" && n.Domain is "" or "ai.onnx").ToList())
        {
            if (GraphEditor.Int(softmax, "axis", -1) is not (-1 or 3) || !Private(softmax.Input[0]) || !Private(softmax.Output[0])) continue;
            // Scores: MatMul(Q, Kᵀ) / √d (+ mask).
            var scores = softmax.Input[0];
            string? maskIndex = null;
            if (From(scores, "Add") is { } maskAdd)
            {
                var side = maskAdd.Input.Select((t, i) => (t, i)).FirstOrDefault(p => (From(p.t, "Div") ?? From(p.t, "Mul")) is { } s && From(s.Input[0], "MatMul") is not null);
                if (side.t is null || !Private(side.t) || MaskIndex(maskAdd.Input[1 - side.i]) is not { } index) continue;
                maskIndex = index;
                scores = side.t;
            }
            float divisor;
            NodeProto? scaling = From(scores, "Div") ?? From(scores, "Mul");
            if (scaling is null || Scalar(scaling.Input[1]) is not { } factor || !Private(scores)) continue;
            divisor = scaling.OpType == "Div" ? factor : 1 / factor;
            if (From(scaling.Input[0], "MatMul") is not { } qk || !Private(scaling.Input[0])) continue;
            if (Reader(softmax.Output[0]) is not { OpType: "MatMul" } pv || pv.Input[0] != softmax.Output[0]) continue;
            var query = Projection(qk.Input[0], 0, 2, 1, 3);
            var key = Projection(qk.Input[1], 0, 2, 3, 1);
            var value = Projection(pv.Input[1], 0, 2, 1, 3);
            if (query is null || key is null || value is null) continue;
            // Context: Transpose(0,2,1,3) → (a requantization the writer put on it) → Reshape to (B, S, H).
            if (!Private(pv.Output[0]) || Reader(pv.Output[0]) is not { OpType: "Transpose" } back || !Perm(back, 0, 2, 1, 3)) continue;
            var context = back.Output[0];
            if (Private(context) && Reader(context) is { OpType: "QuantizeLinear" } requantize &&
                Private(requantize.Output[0]) && Reader(requantize.Output[0]) is { OpType: "DequantizeLinear" } dequantize)
                context = dequantize.Output[0];
            if (!Private(context) || Reader(context) is not { OpType: "Reshape" } merge || ranks.Of(merge.Output[0]) != 3) continue;

            // The three projections: one quantized input and grid, int8 weights [H, H] with per-column or scalar grids.
            var projections = new[] { query, key, value };
            if (projections.Any(p => p.Input != query.Input || p.InputScale != query.InputScale || p.InputZeroPoint != query.InputZeroPoint)) continue;
            var weights = projections.Select(p => Weight(p, initializers)).ToList();
            if (weights.Any(w => w is null)) continue;
            var (hiddenIn, hidden) = (weights[0]!.Value.Rows, weights[0]!.Value.Columns);
            if (weights.Any(w => w!.Value.Rows != hiddenIn || w!.Value.Columns != hidden)) continue;
            var headSize = (int)Math.Round(divisor * divisor);
            if (headSize < 1 || hidden % headSize != 0 || Math.Abs(Math.Sqrt(headSize) - divisor) > 1e-4 * divisor) continue;

            var qkv = new NodeProto { OpType = "QAttention", Domain = GraphEditor.MicrosoftDomain, Name = editor.Unique($"{softmax.Name}.attention") };
            qkv.Input.Add(query.Input);
            qkv.Input.Add(editor.AddInitializer(Concatenate($"{qkv.Name}.weight", weights.Select(w => w!.Value.Codes).ToList(), hiddenIn, hidden)));
            qkv.Input.Add(editor.AddInitializer(OnnxTensors.FromFloats($"{qkv.Name}.bias",
                projections.SelectMany(p => OnnxTensors.Floats(initializers[p.Bias])).ToArray(), 3 * hidden)));
            qkv.Input.Add(query.InputScale);
            qkv.Input.Add(editor.AddInitializer(OnnxTensors.FromFloats($"{qkv.Name}.weight_scale", weights.SelectMany(w => w!.Value.Scales).ToArray(), 3 * hidden)));
            qkv.Input.Add(maskIndex ?? "");
            qkv.Input.Add(query.InputZeroPoint);
            qkv.Input.Add(editor.AddInitializer(ZeroPoints($"{qkv.Name}.weight_zero_point", weights.SelectMany(w => w!.Value.ZeroPoints).ToArray())));
            qkv.Attribute.Add(new AttributeProto { Name = "num_heads", Type = AttributeProto.Types.AttributeType.Int, I = hidden / headSize });
            qkv.Output.Add(merge.Output[0]);
            // After the input's quantization (and, dynamic, its scale): where the first projection's integer MatMul was.
            graph.Node.Insert(graph.Node.IndexOf(producer[query.Input]) + 1, qkv);
            graph.Node.Remove(merge);
            fused++;
        }
        if (fused > 0) editor.ImportMicrosoftDomain();
        editor.RemoveUnused();
        return fused;

        // The attention mask as QAttention reads it: the 2-D 0/1 graph input the additive mask was built from —
        // (1 − Cast(Unsqueeze(Unsqueeze(mask)))) · c with c ≤ −1000 — cast to int32 once per input.
        string? MaskIndex(string additive)
        {
            if (From(additive, "Mul") is not { } scale) return null;
            var (constant, rest) = Scalar(scale.Input[1]) is { } c1 ? (c1, scale.Input[0]) : Scalar(scale.Input[0]) is { } c0 ? (c0, scale.Input[1]) : (0f, "");
            if (constant > -1000 || From(rest, "Sub") is not { } inverted || Scalar(inverted.Input[0]) != 1f) return null;
            var source = inverted.Input[1];
            while ((From(source, "Unsqueeze") ?? From(source, "Cast")) is { } step) source = step.Input[0];
            if (!inputs.TryGetValue(source, out var input) || input.Type.TensorType is not { } type || type.Shape?.Dim.Count != 2) return null;
            if (masks.TryGetValue(source, out var done)) return done;
            var cast = new NodeProto { OpType = "Cast", Name = editor.Unique($"{source}.mask_index") };
            cast.Input.Add(source);
            cast.Output.Add(cast.Name);
            cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = OnnxTensors.Int32 });
            graph.Node.Insert(0, cast);
            return masks[source] = cast.Output[0];
        }
    }

    // One Q, K or V projection as integer kernels compute it: its quantized input with that input's scale and zero-point
    // (initializers, or DynamicQuantizeLinear's outputs), its int8 weight codes with their scale and zero-point, its bias.
    private sealed record IntegerProjection(string Input, string InputScale, string InputZeroPoint, string Codes, string WeightScale,
        string WeightZeroPoint, string Bias);

    // A projection's int8 weight [rows, columns] with its per-column scales and zero-points (a scalar grid repeated).
    private static (sbyte[] Codes, int Rows, int Columns, float[] Scales, sbyte[] ZeroPoints)? Weight(IntegerProjection projection, Dictionary<string, TensorProto> initializers)
    {
        if (!initializers.TryGetValue(projection.Codes, out var codes) || codes.DataType != OnnxTensors.Int8 || codes.Dims.Count != 2) return null;
        if (!initializers.TryGetValue(projection.WeightScale, out var scale) || scale.DataType != OnnxTensors.Float) return null;
        if (!initializers.TryGetValue(projection.Bias, out var bias) || bias.DataType != OnnxTensors.Float) return null;
        var (rows, columns) = ((int)codes.Dims[0], (int)codes.Dims[1]);
        if (OnnxTensors.ElementCount(bias) != columns) return null;
        var scales = OnnxTensors.Floats(scale);
        if (scales.Length != 1 && scales.Length != columns) return null;
        sbyte[] zeros = new sbyte[scales.Length];
        if (projection.WeightZeroPoint.Length > 0)
        {
            if (!initializers.TryGetValue(projection.WeightZeroPoint, out var zeroPoint) || zeroPoint.DataType != OnnxTensors.Int8 ||
                OnnxTensors.ElementCount(zeroPoint) is var count && count != 1 && count != scales.Length) return null;
            zeros = (sbyte[])(Array)zeroPoint.RawData.ToByteArray();
            if (zeros.Length != count) zeros = zeroPoint.Int32Data.Select(v => (sbyte)v).ToArray();
        }
        var data = codes.RawData.Length == rows * columns ? (sbyte[])(Array)codes.RawData.ToByteArray() : codes.Int32Data.Select(v => (sbyte)v).ToArray();
        return (data, rows, columns, scales.Length == 1 ? Enumerable.Repeat(scales[0], columns).ToArray() : scales,
            zeros.Length == 1 ? Enumerable.Repeat(zeros[0], columns).ToArray() : zeros);
    }

    // [rows, 3·columns]: each row holds Q's, K's and V's columns in turn, as QAttention reads its packed weight.
    private static TensorProto Concatenate(string name, List<sbyte[]> parts, int rows, int columns)
    {
        var packed = new byte[rows * columns * parts.Count];
        for (var row = 0; row < rows; row++)
            for (var part = 0; part < parts.Count; part++)
                Buffer.BlockCopy(parts[part], row * columns, packed, (row * parts.Count + part) * columns, columns);
        var tensor = new TensorProto { Name = name, DataType = OnnxTensors.Int8, RawData = ByteString.CopyFrom(packed) };
        tensor.Dims.AddRange(new long[] { rows, columns * parts.Count });
        return tensor;
    }

    private static TensorProto ZeroPoints(string name, sbyte[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = OnnxTensors.Int8, RawData = ByteString.CopyFrom((byte[])(Array)values) };
        tensor.Dims.Add(values.Length);
        return tensor;
    }
}
