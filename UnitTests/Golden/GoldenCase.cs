using System.Text.Json;

namespace MLNetQuant.UnitTests.Golden;

/// <summary>One case of a golden file: its category (the file's "category"), id, params, inputs and expectations.</summary>
internal sealed record GoldenCase(string File, string Category, string Id, JsonElement Json)
{
    public JsonElement Params => Json.GetProperty("params");
    public JsonElement Expected => Json.GetProperty("expected");

    public GoldenTensor Tensor(string name) => GoldenTensor.Parse(Json.GetProperty(name));

    public override string ToString() => $"{Category}/{Id}";
}
