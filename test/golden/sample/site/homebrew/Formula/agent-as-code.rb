class AgentAsCode < Formula
  desc "Build, test and ship AI agents from declarative definitions"
  homepage "https://github.com/example/agent-as-code"
  version "1.12.2"
  license "Apache-2.0"

  on_macos do
    on_intel do
      url "http://127.0.0.1:8080/binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_darwin_amd64.zip"
      sha256 "75c7002dc185cedfd8dd3c86b3b5a5ad0ebbf98b927e2178b3ce9d12cf4d6ca0"
    end

    on_arm do
      url "http://127.0.0.1:8080/binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_darwin_arm64.zip"
      sha256 "863e17a73a69311810900e4fa20f5bbe5e844740a19fc46f129ebb089af9bb8c"
    end
  end

  on_linux do
    on_intel do
      url "http://127.0.0.1:8080/binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_linux_amd64.zip"
      sha256 "f206d390a764556f0e89040836b5e3762068042b524dea82322a7e02d5d38c17"
    end

    on_arm do
      url "http://127.0.0.1:8080/binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_linux_arm64.zip"
      sha256 "e3c0ce4693dbed096067ecd18f2ae7f81007f3989764eac4e74c071b83e9ae81"
    end
  end

  def install
    bin.install "agent_as_code"
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/agent_as_code --version")
  end
end
