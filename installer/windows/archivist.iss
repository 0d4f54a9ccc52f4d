; Inno Setup script for Archivist on Windows (Inno Setup 6.2 or newer).
;
; Built by `python installer/build.py` on Windows, which runs:
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\archivist /DRuntime=directml /DOutputDir=dist installer\windows\archivist.iss
;
; * Per-user install without administrator rights: %LOCALAPPDATA%\Programs\Archivist
;   (an administrator may choose "install for all users" in the first dialog).
; * Start-menu entry, optional desktop shortcut, optional `archivist` on the user's PATH.
; * The uninstaller asks whether to remove your data too (conversations, indexes,
;   downloaded models in %LOCALAPPDATA%\Archivist); the default keeps it. Silent
;   uninstalls keep it unless run with /PURGE=1.
; * Runtime: the DirectML build of onnxruntime-genai by default (any DirectX 12 GPU,
;   falling back to the CPU); /DRuntime=cuda packages a build made with
;   `python installer/build.py --runtime cuda` for NVIDIA GPUs (a separate download,
;   because the two builds share one module name and cannot live in one app).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\archivist"
#endif
#ifndef Runtime
  #define Runtime "directml"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

#if Runtime == "cuda"
  #define RuntimeLabel "CUDA (NVIDIA GPUs)"
#elif Runtime == "cpu"
  #define RuntimeLabel "CPU"
#else
  #define RuntimeLabel "DirectML (any DirectX 12 GPU)"
#endif

[Setup]
AppId={{6C1B7E0A-3F5D-4B8E-9A57-2D1E4C6F8A31}
AppName=Archivist
AppVersion={#AppVersion}
AppVerName=Archivist {#AppVersion} ({#RuntimeLabel})
AppPublisher=Archivist developers
AppPublisherURL=https://github.com/archivist-app/archivist
AppSupportURL=https://github.com/archivist-app/archivist/issues
DefaultDirName={autopf}\Archivist
DefaultGroupName=Archivist
DisableProgramGroupPage=yes
; Per-user by default, no UAC prompt; admins may still pick all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0.17763
OutputDir={#OutputDir}
OutputBaseFilename=Archivist-{#AppVersion}-windows-{#Runtime}-setup
SetupIconFile=..\icons\archivist.ico
UninstallDisplayIcon={app}\archivist-gui.exe
UninstallDisplayName=Archivist
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
ChangesEnvironment=yes
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the archivist command to my PATH"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Archivist"; Filename: "{app}\archivist-gui.exe"; Comment: "Ask questions about your own files, offline"
Name: "{autodesktop}\Archivist"; Filename: "{app}\archivist-gui.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\archivist-gui.exe"; Description: "{cm:LaunchProgram,Archivist}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files the app writes next to itself (none today; PyInstaller's cache if it ever does).
Type: filesandordirs; Name: "{app}\_internal\__pycache__"

[Code]
const
  EnvKey = 'Environment';

function DataDir(): String;
begin
  { platformdirs.user_data_dir("Archivist", appauthor=False) on Windows }
  Result := ExpandConstant('{localappdata}\Archivist');
end;

function PathHas(Paths, Dir: String): Boolean;
begin
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') > 0;
end;

procedure AddToPath(Dir: String);
var
  Paths: String;
begin
  if not RegQueryStringValue(HKCU, EnvKey, 'Path', Paths) then
    Paths := '';
  if PathHas(Paths, Dir) then
    exit;
  if (Paths <> '') and (Copy(Paths, Length(Paths), 1) <> ';') then
    Paths := Paths + ';';
  RegWriteExpandStringValue(HKCU, EnvKey, 'Path', Paths + Dir);
end;

procedure RemoveFromPath(Dir: String);
var
  Paths: String;
  P: Integer;
begin
  if not RegQueryStringValue(HKCU, EnvKey, 'Path', Paths) then
    exit;
  P := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
  if P = 0 then
    exit;
  if P = 1 then
    Delete(Paths, 1, Length(Dir) + 1)  { first entry: with the ';' after it }
  else
    Delete(Paths, P - 1, Length(Dir) + 1);  { with the ';' before it }
  RegWriteExpandStringValue(HKCU, EnvKey, 'Path', Paths);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    AddToPath(ExpandConstant('{app}'));
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Purge: Boolean;
begin
  if CurUninstallStep = usUninstall then
    RemoveFromPath(ExpandConstant('{app}'));
  if (CurUninstallStep = usPostUninstall) and DirExists(DataDir()) then
  begin
    if UninstallSilent() then
      Purge := ExpandConstant('{param:PURGE|0}') = '1'
    else
      Purge := MsgBox('Also delete your Archivist data?' + #13#10#13#10 +
        'Your conversations, document indexes, settings and downloaded models are in' + #13#10 +
        DataDir() + #13#10#13#10 +
        'Choose No to keep them for a later install.',
        mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
    if Purge then
      DelTree(DataDir(), True, True, True);
  end;
end;
